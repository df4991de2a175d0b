using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;

namespace KvStore.Bench.Realtime;

internal sealed partial class RealtimeBenchmark
{
    private const int SampledReaders = 500;

    /// <summary>
    /// Claps: 10,000 readers of one article, ~1,000 clicks/s of hub Increment from 200 clicker connections
    /// in a process of their own (<see cref="WriterProcess"/>).
    /// </summary>
    private async Task ClapsAsync()
    {
        var cs = await CreateDatabaseAsync("rt_claps");
        await using var host = await StartKvHostAsync(cs, "kvstore");
        var readers = _maxConnections;
        var result = await RunClapsAsync([host], readers, clickers: 200, rate: 1_000, Seconds(20));
        PrintClapsHeader();
        PrintClapsRow("one node", result);
        Console.WriteLine();
        Console.WriteLine($"Host: {host.SlowConsumerLogs} slow-consumer warnings logged.");
        PrintClapsNotes();
    }

    private static void PrintClapsHeader()
    {
        Console.WriteLine("| setup | readers | clicks/s target / achieved | exact | SQL statements/s (all / writes / increment statements) | Increment p50 / p99 ms | click→reader p50 / p99 ms | converged after last click | errors | client problems |");
        Console.WriteLine("|---|---:|---:|---|---:|---:|---:|---:|---|---|");
    }

    private static void PrintClapsRow(string setup, ClapsResult r) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {setup} | {r.Readers:N0} | {r.Rate:N0} / {r.Clicks.Achieved:N0} | {r.Exactness} | {r.Sql.All:N0} / {r.Sql.Writes:N0} / {r.Batched:N0} | {r.Clicks.Latency} | {r.ClickToReader.P50P99()} | {r.Converged} | {r.Clicks.Errors} | {r.Problems} |"));

    private static void PrintClapsNotes()
    {
        Console.WriteLine();
        Console.WriteLine($"Exact: the final total (GET /v1) equals the number of acknowledged increments, and every reader ends with it. SQL statements/s: MariaDB `Questions` (all statements of any client: writes, the reads of subscribes, the change stream's checkpoints, this benchmark's own few) and Com_insert+update+delete over the click window, and the increment batcher's own statements (`kvstore.realtime.increment.statements` of /metrics, summed over the hub nodes). Click→reader: from when a click was due to when a reader first holds a total ≥ the total that click returned, over {SampledReaders} sampled readers × every click. Converged: from the last click's answer until every reader holds the final total.");
    }

    private async Task<ClapsResult> RunClapsAsync(IReadOnlyList<ChildHost> hubs, int readers, int clickers, double rate, TimeSpan duration, string table = "article:hot")
    {
        const string Key = "claps";
        var urls = hubs.Select(h => h.BaseUrl).ToList();
        var apiHost = hubs[0];
        var counters = new ClientCounters();
        var timelines = new List<(long Ts, long Value)>[Math.Min(SampledReaders, readers)];
        for (var i = 0; i < timelines.Length; i++)
        {
            timelines[i] = new List<(long, long)>(1024);
        }

        var readerClients = await OpenKvClientsAsync(urls, 0, readers, counters, _ => table, c =>
        {
            if (c.Index < timelines.Length)
            {
                var timeline = timelines[c.Index];
                c.OnApplied = (_, change, ts) =>
                {
                    if (change.Key == Key && change.Value is { } v)
                    {
                        lock (timeline)
                        {
                            timeline.Add((ts, v));
                        }
                    }
                };
            }
        });
        try
        {
            await Task.Delay(2000, _ct);
            counters.Reset();
            var count = (int)Math.Round(rate * duration.TotalSeconds);
            var batched0 = await IncrementStatementsAsync(hubs);
            SqlCounters? sql0 = null;
            Task<SqlCounters>? sql1Task = null;
            var clicks = await WriterProcess.RunAsync(string.Join(',', urls), table, Key, clickers, rate, duration, increment: true, _ct, () =>
            {
                // The clickers' window starts (after they connected and warmed up): read the counters now and at its end.
                sql0 = SqlCounters.ReadAsync(_server.AdminConnectionString).GetAwaiter().GetResult();
                sql1Task = Task.Delay(duration, _ct).ContinueWith(_ => SqlCounters.ReadAsync(_server.AdminConnectionString), TaskScheduler.Default).Unwrap();
            });
            var clickDue = clicks.Due;
            var clickTotal = clicks.Values;
            var sql1 = await (sql1Task ?? throw new InvalidOperationException("the clickers never started their window"));
            var batched = (await IncrementStatementsAsync(hubs) - batched0) / Latencies.Ms(clicks.Start, Math.Max(clicks.LastDoneAt, sql1.Timestamp)) * 1000;
            var total = await ReadNumberAsync(apiHost, table, Key);
            var converged = await ConvergenceAsync(readerClients, r => r.Number(Key) == total, clicks.LastDoneAt, TimeSpan.FromSeconds(30));
            var wrongReaders = readerClients.Count(r => r.Number(Key) != total);
            var failed = clicks.Failed;
            var exact = failed == 0
                ? (total == clicks.Ok && wrongReaders == 0 ? $"yes ({total:N0})" : $"**no**: total {total:N0}, acknowledged {clicks.Ok:N0}, {wrongReaders:N0} readers differ")
                : (total >= clicks.Ok && total <= clicks.Ok + failed && wrongReaders == 0 ? $"total {total:N0} within acknowledged {clicks.Ok:N0} + failed {failed:N0}" : $"**no**: total {total:N0}, acknowledged {clicks.Ok:N0}, failed {failed:N0}, {wrongReaders:N0} readers differ");

            var clickToReader = new Latencies(count * timelines.Length);
            long neverSeen = 0;
            foreach (var timeline in timelines)
            {
                (long Ts, long Value)[] points;
                lock (timeline)
                {
                    points = [.. timeline];
                }

                var ts = points.Select(t => t.Ts).ToArray();
                var values = points.Select(t => t.Value).ToArray();
                var latencies = new List<double>(count);
                for (var i = 0; i < count; i++)
                {
                    if (clickDue[i] == 0 || clickTotal[i] < 0)
                    {
                        continue;
                    }

                    var at = FirstAtLeast(values, clickTotal[i]);
                    if (at < 0)
                    {
                        neverSeen++;
                        continue;
                    }

                    latencies.Add(Latencies.Ms(clickDue[i], ts[at]));
                }

                clickToReader.AddRange(latencies);
            }

            var problems = counters.Gaps + counters.Duplicates + counters.Closes + counters.Incomplete + neverSeen == 0
                ? "none"
                : counters.Problems() + (neverSeen > 0 ? $", click totals never seen by a sampled reader {neverSeen:N0}" : "");
            return new ClapsResult(readerClients.Count, rate, clicks, exact, sql1.RatesSince(sql0!), batched, clickToReader, converged, problems);
        }
        finally
        {
            await Load.CloseAllAsync(readerClients);
        }
    }

    private static async Task<double> IncrementStatementsAsync(IReadOnlyList<ChildHost> hubs)
    {
        double sum = 0;
        foreach (var hub in hubs)
        {
            using var metrics = JsonDocument.Parse(await hub.Http.GetStringAsync("/metrics"));
            if (metrics.RootElement.TryGetProperty("kvstore.realtime.increment.statements", out var value))
            {
                sum += value.GetDouble();
            }
        }

        return sum;
    }

    /// <summary>Index of the first value ≥ <paramref name="target"/> in a non-decreasing array, or -1.</summary>
    private static int FirstAtLeast(long[] values, long target)
    {
        int lo = 0, hi = values.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            if (values[mid] >= target)
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }

        return lo < values.Length ? lo : -1;
    }

    private static async Task<long> ReadNumberAsync(ChildHost host, string table, string key)
    {
        using var response = await host.Http.GetAsync($"/v1/tables/{Uri.EscapeDataString(table)}/entries/{Uri.EscapeDataString(key)}");
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return 0;
        }

        response.EnsureSuccessStatusCode();
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("value").GetInt64();
    }

    private sealed record ClapsResult(int Readers, double Rate, WriterProcess.Result Clicks, string Exactness, (double All, double Writes, double Selects) Sql, double Batched, Latencies ClickToReader, string Converged, string Problems);
}
