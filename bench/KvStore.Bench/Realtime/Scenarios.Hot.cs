using System.Diagnostics;
using System.Globalization;
using Microsoft.AspNetCore.SignalR.Client;

namespace KvStore.Bench.Realtime;

internal sealed partial class RealtimeBenchmark
{
    /// <summary>
    /// One hot key: writers put it at 200/s and 1,000/s (open loop, hub Put from one connection per
    /// simulated user at 10 puts/s each, in a process of their own: <see cref="WriterProcess"/>) while
    /// 100 … 10,000 connections subscribe to its table.
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
        var subscribers = new List<BenchClient>();
        var hubUrl = host.BaseUrl;
        try
        {
            // Creates the table and warms the host up (JIT, pools), not measured.
            await WriterProcess.RunAsync(hubUrl, "hot", "k", 20, 200, TimeSpan.FromSeconds(2), false, _ct);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Table `hot`, one key, {duration.TotalSeconds:0} s per cell; writers: hub `Put` from one connection per simulated user at 10 puts/s each (20 for 200/s, 100 for 1,000/s), in a writer process of their own (the generator's subscriber connections would delay its answers), open loop, latency from the time each put was due; at most one second's worth outstanding (more due puts are not sent, and counted); a host whose thread-pool queue has drained (≤ 20 s) before every cell; answers waited for up to 15 s after the window."));
            Console.WriteLine();
            Console.WriteLine("| subscribers | target puts/s | achieved puts/s | put p50 / p99 / max ms | errors | frames/s per subscriber | subscribers converged after | pool queue max / avg | host CPU | client problems |");
            Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
            foreach (var level in levels)
            {
                subscribers.AddRange(await OpenKvClientsAsync([host.BaseUrl], subscribers.Count + 100, level - subscribers.Count, counters, _ => "hot"));
                await Task.Delay(2000, _ct);
                foreach (var rate in new[] { 200, 1_000 })
                {
                    await WaitForCalmAsync(host, TimeSpan.FromSeconds(20));
                    counters.Reset();
                    await TryStatsAsync(host, reset: true);
                    var cpu0 = host.CpuMs();
                    var wall = Stopwatch.StartNew();
                    var framesAtStart = Interlocked.Read(ref counters.Frames);
                    // The writer process connects and warms up for ~2 s before its window.
                    var result = await WriterProcess.RunAsync(hubUrl, "hot", "k", rate / 10, rate, duration, false, _ct);
                    var done = Stopwatch.GetTimestamp();
                    var frames = Interlocked.Read(ref counters.Frames) - framesAtStart;
                    var cpu = host.CpuMs() - cpu0;
                    var elapsed = wall.Elapsed;
                    var target = result.LastRevision;
                    var converged = await ConvergenceAsync(subscribers, s => s.Revision >= target, done, TimeSpan.FromSeconds(15));
                    var stats = await TryStatsAsync(host);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {subscribers.Count:N0} | {rate:N0} | {result.Achieved:N0} | {result.Latency} / {Latencies.F(result.Max)} | {result.Errors} | {frames / (double)subscribers.Count / elapsed.TotalSeconds:0.0} | {converged} | {(stats is null ? "no answer" : $"{stats.PoolQueueMax:N0} / {stats.PoolQueueAvg:N0}")} | {Pct(cpu, elapsed)} | {(counters.Gaps + counters.Duplicates + counters.Closes + counters.Incomplete == 0 ? "none" : counters.Problems())} |"));
                }
            }

            Console.WriteLine();
            Console.WriteLine($"Host: {host.SlowConsumerLogs} slow-consumer warnings logged. Frames/s per subscriber counts frames received during the window; converged = every subscriber holds the last put's revision (the latest time a subscriber applied its last change, from the last put's answer).");
        }
        finally
        {
            await Load.CloseAllAsync(subscribers);
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
