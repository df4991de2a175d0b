using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;

namespace KvStore.Bench.Realtime;

internal sealed partial class RealtimeBenchmark
{
    /// <summary>
    /// Messages/s delivered to 10,000 connections: stock SignalR (awaited IHubContext group sends of
    /// small messages, as fast as they go) against KvStore (a hot table, MaxFramesPerSecondPerTable=100,
    /// writers fast enough that frames, not writes, are the limit). Counted where they arrive: at the clients.
    /// </summary>
    private async Task FanoutAsync()
    {
        var connections = _maxConnections;
        var duration = Seconds(10);
        var stock = await StockFanoutAsync(connections, duration);
        var kv = await KvFanoutAsync(connections, duration);
        Console.WriteLine($"{connections:N0} connections, {duration.TotalSeconds:0} s windows. Stock: POST /bench/send (N awaited group sends of a 200-byte string, ~260 bytes on the wire); its row also shows 10 messages/s broadcast latency. KvStore: hub `Put` of one key at 1,000/s from 20 connections, MaxFramesPerSecondPerTable=100 (frames of ~300 bytes).");
        Console.WriteLine();
        Console.WriteLine("| host | messages/s delivered | per connection /s | values/s delivered | KvStore / stock (messages) | host CPU | pool queue max / avg | notes |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---|");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| stock SignalR | {stock.Rate:N0} | {stock.Rate / connections:0.0} | {stock.Rate:N0} | 1.00× | {stock.Cpu} | {stock.Pool} | {stock.Notes} |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| KvStore | {kv.Rate:N0} | {kv.Rate / connections:0.0} | {kv.Values:N0} | {Ratio(kv.Rate, stock.Rate)} | {kv.Cpu} | {kv.Pool} | {kv.Notes} |"));
    }

    private async Task<FanoutResult> StockFanoutAsync(int connections, TimeSpan duration)
    {
        await using var host = await StartStockHostAsync();
        var counters = new StockCounters();
        long lastReceived = 0;
        var broadcast = new Latencies();
        var recordLatency = false;
        counters.OnMessage = (m, ts) =>
        {
            Load.InterlockedMax(ref lastReceived, ts);
            if (Volatile.Read(ref recordLatency))
            {
                broadcast.Add(Latencies.Ms(m.Ts, ts));
            }
        };
        var (clients, _) = await Load.OpenAsync(0, connections, async (_, ct) =>
        {
            var c = new StockClient(host.BaseUrl, counters);
            await c.Connection.StartAsync(ct);
            await c.Connection.InvokeAsync("Join", ct);
            return c;
        }, _ct);
        try
        {
            // Warm-up, then a measured burst sized to last about the window at ~100,000 messages/s.
            await SendAsync(host, 5, clients.Count, counters);
            var perConnection = Math.Clamp((int)(duration.TotalSeconds * 100_000 / Math.Max(1, clients.Count)), 10, 2_000);
            await TryStatsAsync(host, reset: true);
            var cpu0 = host.CpuMs();
            Interlocked.Exchange(ref counters.Received, 0);
            var start = Stopwatch.GetTimestamp();
            var serverMs = await SendAsync(host, perConnection, clients.Count, counters);
            var received = Interlocked.Read(ref counters.Received);
            var seconds = Latencies.Ms(start, Interlocked.Read(ref lastReceived)) / 1000;
            var cpu = host.CpuMs() - cpu0;
            var stats = await TryStatsAsync(host);

            // Latency at a fixed 10 messages/s to every member.
            Volatile.Write(ref recordLatency, true);
            Interlocked.Exchange(ref counters.Received, 0);
            using (var response = await host.Http.PostAsync(string.Create(CultureInfo.InvariantCulture, $"/bench/broadcast?rate=10&seconds={duration.TotalSeconds}&bytes=200"), null, _ct))
            {
                response.EnsureSuccessStatusCode();
            }

            var expected = (long)(10 * duration.TotalSeconds) * clients.Count;
            await Load.UntilAsync(() => Interlocked.Read(ref counters.Received) >= expected, duration + TimeSpan.FromSeconds(30));
            Volatile.Write(ref recordLatency, false);
            var notes = string.Create(CultureInfo.InvariantCulture,
                $"{perConnection:N0} sends, {received:N0} of {(long)perConnection * clients.Count:N0} received in {seconds:0.0} s (server sends took {serverMs / 1000:0.0} s); at 10 messages/s: {Interlocked.Read(ref counters.Received):N0} of {expected:N0} received, latency p50 / p99 {broadcast.P50P99()} ms");
            return new FanoutResult(received / seconds, received / seconds, Pct(cpu, TimeSpan.FromSeconds(seconds)), stats is null ? "no answer" : $"{stats.PoolQueueMax:N0} / {stats.PoolQueueAvg:N0}", notes);
        }
        finally
        {
            await Load.CloseAllAsync(clients);
        }
    }

    /// <summary>POST /bench/send?n=… and wait (bounded) until the clients have them; answers the host's send time in ms.</summary>
    private async Task<double> SendAsync(ChildHost host, int perConnection, int connections, StockCounters counters)
    {
        var before = Interlocked.Read(ref counters.Received);
        double serverMs;
        using (var response = await host.Http.PostAsync(string.Create(CultureInfo.InvariantCulture, $"/bench/send?n={perConnection}&bytes=200"), null, _ct))
        {
            response.EnsureSuccessStatusCode();
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(_ct));
            serverMs = json.RootElement.GetProperty("elapsedMs").GetDouble();
        }

        var expected = before + ((long)perConnection * connections);
        // Bounded: stop waiting when nothing more arrives for 5 s.
        var last = -1L;
        var quiet = Stopwatch.StartNew();
        while (Interlocked.Read(ref counters.Received) < expected && quiet.Elapsed < TimeSpan.FromSeconds(5))
        {
            var now = Interlocked.Read(ref counters.Received);
            if (now != last)
            {
                last = now;
                quiet.Restart();
            }

            await Task.Delay(10, _ct);
        }

        return serverMs;
    }

    private async Task<FanoutResult> KvFanoutAsync(int connections, TimeSpan duration)
    {
        var cs = await CreateDatabaseAsync("rt_fanout");
        await using var host = await StartKvHostAsync(cs, "kvstore", framesPerSecond: 100);
        var counters = new ClientCounters();
        var writerCounters = new ClientCounters();
        var writers = await OpenKvClientsAsync([host.BaseUrl], 0, 20, writerCounters, null);
        var subscribers = await OpenKvClientsAsync([host.BaseUrl], 100, connections, counters, _ => "fan");
        try
        {
            await writers[0].PutAsync("fan", "k", 0L, _ct);
            await Task.Delay(2000, _ct);
            // One second of writes to ramp up, then the measured window.
            var ramp = TimeSpan.FromSeconds(1);
            var write = Load.PacedAsync(
                writers.Count,
                1_000,
                duration + ramp,
                (i, c) => writers[c].PutAsync("fan", "k", i),
                null,
                TimeSpan.FromSeconds(5),
                _ct);
            await Task.Delay(ramp, _ct);
            counters.Reset();
            await TryStatsAsync(host, reset: true);
            var cpu0 = host.CpuMs();
            var start = Stopwatch.GetTimestamp();
            await Task.Delay(duration, _ct);
            var frames = Interlocked.Read(ref counters.Frames);
            var changes = Interlocked.Read(ref counters.ChangesApplied);
            var seconds = Latencies.Ms(start, Stopwatch.GetTimestamp()) / 1000;
            var cpu = host.CpuMs() - cpu0;
            var stats = await TryStatsAsync(host);
            var puts = await write;
            var notes = string.Create(CultureInfo.InvariantCulture,
                $"{frames / seconds / Math.Max(1, subscribers.Count):0.0} frames/s per subscriber; puts {puts.AchievedPerSecond:N0}/s, p50 / p99 {puts.Latency.P50P99()} ms, errors {puts.ErrorSummary()}; {(counters.Gaps + counters.Duplicates + counters.Closes == 0 ? "no client problems" : counters.Problems())}; {host.SlowConsumerLogs} slow-consumer warnings");
            return new FanoutResult(frames / seconds, changes / seconds, Pct(cpu, TimeSpan.FromSeconds(seconds)), stats is null ? "no answer" : $"{stats.PoolQueueMax:N0} / {stats.PoolQueueAvg:N0}", notes);
        }
        finally
        {
            await Load.CloseAllAsync(subscribers);
            await Load.CloseAllAsync(writers);
        }
    }

    private sealed record FanoutResult(double Rate, double Values, string Cpu, string Pool, string Notes);
}
