using System.Globalization;

using Microsoft.AspNetCore.SignalR.Client;

namespace KvStore.Bench.Realtime;

internal sealed partial class RealtimeBenchmark
{
    /// <summary>
    /// Idle memory per subscribed connection: RSS and GC heap of the host with N connections minus
    /// with none, over N, after a forced full GC and a settle, for stock SignalR (group members) and
    /// KvStore (subscribers of one table).
    /// </summary>
    private async Task IdleAsync()
    {
        var levels = new[] { 2_000, 5_000, 10_000 }.Where(l => l <= _maxConnections).ToList();
        if (levels.Count == 0 || levels[^1] < _maxConnections && _maxConnections < 10_000)
        {
            levels.Add(_maxConnections);
        }

        var stock = await IdleSeriesAsync("stock", levels);
        var kv = await IdleSeriesAsync("kvstore", levels);
        Console.WriteLine("Per subscribed connection: (host with N connections − host with 0) / N, after POST /bench/gc and a 3 s settle.");
        Console.WriteLine();
        Console.WriteLine("| connections | stock RSS KB/conn | KvStore RSS KB/conn | RSS KvStore/stock | stock GC heap KB/conn | KvStore GC heap KB/conn | heap KvStore/stock | stock / KvStore RSS MB total |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (var i = 0; i < levels.Count; i++)
        {
            var s = stock[i];
            var k = kv[i];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {s.Connections:N0} | {Kb(s.RssPerConnection)} | {Kb(k.RssPerConnection)} | {Ratio(k.RssPerConnection, s.RssPerConnection)} | {Kb(s.HeapPerConnection)} | {Kb(k.HeapPerConnection)} | {Ratio(k.HeapPerConnection, s.HeapPerConnection)} | {s.Rss / 1048576.0:0} / {k.Rss / 1048576.0:0} |"));
        }

        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Baseline with 0 connections: stock RSS {stock[0].BaseRss / 1048576.0:0} MB, GC heap {stock[0].BaseHeap / 1048576.0:0.0} MB; KvStore RSS {kv[0].BaseRss / 1048576.0:0} MB, GC heap {kv[0].BaseHeap / 1048576.0:0.0} MB."));
    }

    private async Task<List<IdleReading>> IdleSeriesAsync(string kind, IReadOnlyList<int> levels)
    {
        var cs = kind == "kvstore" ? await CreateDatabaseAsync("rt_idle") : null;
        await using var host = cs is null ? await StartStockHostAsync() : await StartKvHostAsync(cs, "kvstore");
        var counters = new ClientCounters();
        var stockCounters = new StockCounters();
        var kvClients = new List<BenchClient>();
        var stockClients = new List<StockClient>();
        async Task OpenToAsync(int total)
        {
            var have = kvClients.Count + stockClients.Count;
            if (cs is null)
            {
                var (opened, _) = await Load.OpenAsync(have, total, async (_, ct) =>
                {
                    var c = new StockClient(host.BaseUrl, stockCounters);
                    await c.Connection.StartAsync(ct);
                    await c.Connection.InvokeAsync("Join", ct);
                    return c;
                }, _ct);
                stockClients.AddRange(opened);
            }
            else
            {
                kvClients.AddRange(await OpenKvClientsAsync([host.BaseUrl], have, total - have, counters, _ => "idle"));
            }
        }

        async Task<(long Rss, long Heap)> MeasureAsync()
        {
            await host.GcAsync();
            await Task.Delay(3000, _ct);
            await host.GcAsync();
            await Task.Delay(1000, _ct);
            var stats = await host.StatsAsync();
            return (host.Rss(), stats.GcTotalMemory);
        }

        try
        {
            // Warm up (JIT, pools) with a few connections that leave again.
            await OpenToAsync(20);
            await Load.CloseAllAsync(kvClients);
            await Load.CloseAllAsync(stockClients);
            kvClients.Clear();
            stockClients.Clear();
            await Task.Delay(1000, _ct);
            var (baseRss, baseHeap) = await MeasureAsync();
            var readings = new List<IdleReading>();
            foreach (var level in levels)
            {
                await OpenToAsync(level);
                var n = kvClients.Count + stockClients.Count;
                var (rss, heap) = await MeasureAsync();
                readings.Add(new IdleReading(n, (rss - baseRss) / (double)n, (heap - baseHeap) / (double)n, rss, baseRss, baseHeap));
                Console.Error.WriteLine($"  idle {kind}: {n} connections, RSS {rss / 1048576} MB");
            }

            if (counters.Closes > 0)
            {
                Console.WriteLine($"{kind}: {counters.Problems()}");
            }

            return readings;
        }
        finally
        {
            await Load.CloseAllAsync(kvClients);
            await Load.CloseAllAsync(stockClients);
        }
    }

    private sealed record IdleReading(int Connections, double RssPerConnection, double HeapPerConnection, long Rss, long BaseRss, long BaseHeap);
}
