using System.Diagnostics;
using System.Globalization;
using Microsoft.AspNetCore.SignalR.Client;

namespace KvStore.Bench.Realtime;

internal sealed partial class RealtimeBenchmark
{
    /// <summary>
    /// One hot key: writers put it at 200/s and 1,000/s (open loop, hub Put from writer connections that
    /// subscribe to nothing) while 100 … 10,000 connections subscribe to its table.
    /// </summary>
    private async Task HotAsync()
    {
        var levels = new[] { 100, 1_000, 2_500, 5_000, 10_000 }.Where(l => l <= _maxConnections).ToList();
        if (levels.Count == 0 || levels[^1] < _maxConnections && _maxConnections < 10_000)
        {
            levels.Add(_maxConnections);
        }

        var duration = Seconds(10);
        var cs = await CreateDatabaseAsync("rt_hot");
        await using var host = await StartKvHostAsync(cs, "kvstore");
        var counters = new ClientCounters();
        var writerCounters = new ClientCounters();
        var writers = await OpenKvClientsAsync([host.BaseUrl], 0, 20, writerCounters, null);
        var writerBase = 20;
        var subscribers = new List<BenchClient>();
        try
        {
            await writers[0].PutAsync("hot", "k", 0L, _ct);
            // Warm-up (JIT, pools, writer connections), not measured.
            await Load.PacedAsync(20, 500, TimeSpan.FromSeconds(2), (i, c) => writers[c].PutAsync("hot", "k", i), null, TimeSpan.FromSeconds(10), _ct);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Table `hot`, one key, {duration.TotalSeconds:0} s per cell; writers: hub `Put` from 4 (200/s) or 20 (1,000/s) connections, open loop, latency from the time each put was due; at most one second's worth outstanding (more due puts are not sent, and counted); fresh writer connections and a host whose thread-pool queue has drained (≤ 20 s) before every cell; answers waited for up to 15 s after the window."));
            Console.WriteLine();
            Console.WriteLine("| subscribers | target puts/s | achieved puts/s | put p50 / p99 / max ms | errors | frames/s per subscriber | subscribers converged after | pool queue max / avg | host CPU | client problems |");
            Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
            foreach (var level in levels)
            {
                subscribers.AddRange(await OpenKvClientsAsync([host.BaseUrl], subscribers.Count + 100, level - subscribers.Count, counters, _ => "hot"));
                await Task.Delay(2000, _ct);
                foreach (var rate in new[] { 200, 1_000 })
                {
                    var writerCount = rate >= 1_000 ? 20 : 4;
                    // Fresh writer connections and a calm host for every cell: a host that could not answer
                    // the last cell's puts still has them queued on those connections (one invocation at a time each).
                    await Load.CloseAllAsync(writers);
                    writers = await OpenKvClientsAsync([host.BaseUrl], writerBase, 20, writerCounters, null);
                    writerBase += 20;
                    await WaitForCalmAsync(host, TimeSpan.FromSeconds(20));
                    counters.Reset();
                    await TryStatsAsync(host, reset: true);
                    var cpu0 = host.CpuMs();
                    var wall = Stopwatch.StartNew();
                    long lastRevision = 0;
                    var framesAtEnd = Task.Delay(duration, _ct).ContinueWith(_ => Interlocked.Read(ref counters.Frames), TaskScheduler.Default);
                    var result = await Load.PacedAsync(
                        writerCount,
                        rate,
                        duration,
                        (i, c) => writers[c].PutAsync("hot", "k", i),
                        (_, _, _, entry) => Load.InterlockedMax(ref lastRevision, entry.Revision),
                        TimeSpan.FromSeconds(15),
                        _ct,
                        maxInFlight: rate);
                    var frames = await framesAtEnd;
                    var cpu = host.CpuMs() - cpu0;
                    var elapsed = wall.Elapsed;
                    var target = Interlocked.Read(ref lastRevision);
                    var converged = await ConvergenceAsync(subscribers, s => s.Revision >= target, result.LastDoneAt, TimeSpan.FromSeconds(15));
                    var stats = await TryStatsAsync(host);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {subscribers.Count:N0} | {rate:N0} | {result.AchievedPerSecond:N0} | {result.Latency.P50P99()} / {Latencies.F(result.Latency.Max())} | {result.ErrorSummary()} | {frames / (double)subscribers.Count / duration.TotalSeconds:0.0} | {converged} | {(stats is null ? "no answer" : $"{stats.PoolQueueMax:N0} / {stats.PoolQueueAvg:N0}")} | {Pct(cpu, elapsed)} | {(counters.Gaps + counters.Duplicates + counters.Closes + counters.Incomplete == 0 ? "none" : counters.Problems())} |"));
                }
            }

            Console.WriteLine();
            Console.WriteLine($"Host: {host.SlowConsumerLogs} slow-consumer warnings logged. Frames/s per subscriber counts frames received during the window; converged = every subscriber holds the last put's revision (the latest time a subscriber applied its last change, from the last put's answer).");
        }
        finally
        {
            await Load.CloseAllAsync(subscribers);
            await Load.CloseAllAsync(writers);
        }
    }

    /// <summary>Waits (bounded) until the host's thread-pool queue is short again.</summary>
    private static async Task WaitForCalmAsync(ChildHost host, TimeSpan timeout)
    {
        var elapsed = Stopwatch.StartNew();
        while (elapsed.Elapsed < timeout && await TryStatsAsync(host) is { PoolQueue: > 50 })
        {
            await Task.Delay(250);
        }
    }
}
