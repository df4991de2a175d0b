using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;

namespace KvStore.Bench.Realtime;

internal sealed partial class RealtimeBenchmark
{
    /// <summary>Realtime database: 1,000 tables × 10 subscribers, writes at 200/s and 1,000/s spread over the tables.</summary>
    private async Task DbAsync()
    {
        var cs = await CreateDatabaseAsync("rt_db");
        await using var host = await StartKvHostAsync(cs, "kvstore");
        var results = await RunDbAsync([host.BaseUrl], host, tables: Math.Max(1, _maxConnections / 10), perTable: 10, [200, 1_000], Seconds(15));
        PrintDbHeader();
        foreach (var r in results)
        {
            PrintDbRow("one node", r);
        }

        Console.WriteLine();
        Console.WriteLine($"Host: {host.SlowConsumerLogs} slow-consumer warnings logged.");
        PrintDbNotes();
    }

    private static void PrintDbHeader()
    {
        Console.WriteLine("| setup | tables × subscribers | writes/s target / achieved | put p50 / p99 ms | write-return→subscriber p50 / p90 / p99 / max ms | arrived before the put returned | losses | duplicates | gaps | messages/s delivered | views equal the tables | errors | client problems |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|");
    }

    private static void PrintDbRow(string setup, DbResult r) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {setup} | {r.Tables:N0} × {r.PerTable} | {r.Rate:N0} / {r.Writes.AchievedPerSecond:N0} | {r.Writes.Latency.P50P99()} | {Latencies.F(r.Delivery.Percentile(50))} / {Latencies.F(r.Delivery.Percentile(90))} / {Latencies.F(r.Delivery.Percentile(99))} / {Latencies.F(r.Delivery.Max())} | {r.Early:N0} | {r.Losses:N0} | {r.Duplicates:N0} | {r.Gaps:N0} | {r.MessagesPerSecond:N0} | {r.Views} | {r.Writes.ErrorSummary()} | {r.Problems} |"));

    private static void PrintDbNotes()
    {
        Console.WriteLine();
        Console.WriteLine("Every write puts a new key (so frame merging keeps every change), on a table chosen at random, through hub `Put` from 20 writer connections, open loop. Latency: from the put's answer at the writer to a subscriber applying that revision (0 when the frame came first; counted in 'arrived before'). Losses: (write, subscriber of its table) pairs whose revision never reached the subscriber. Duplicates: changes at or below the revision held, outside the subscribe buffer. Gaps: frames whose `after` was above the revision held (the client resumed). Views: every subscriber's live keys and revisions equal GET /v1/tables/{t}/entries at the end.");
    }

    private async Task<List<DbResult>> RunDbAsync(IReadOnlyList<string> urls, ChildHost apiHost, int tables, int perTable, IReadOnlyList<int> rates, TimeSpan duration)
    {
        var counters = new ClientCounters();
        var writerCounters = new ClientCounters();
        var subscriberCount = tables * perTable;
        var received = new List<(long Revision, long Ts)>[subscriberCount];
        for (var i = 0; i < subscriberCount; i++)
        {
            received[i] = new List<(long, long)>(64);
        }

        string TableOf(int subscriber) => "db:" + (subscriber % tables).ToString(CultureInfo.InvariantCulture);
        var writers = await OpenKvClientsAsync(urls, 0, 20, writerCounters, null);
        var subscribers = await OpenKvClientsAsync(urls, 0, subscriberCount, counters, TableOf, c =>
        {
            var list = received[c.Index];
            c.OnApplied = (_, change, ts) =>
            {
                lock (list)
                {
                    list.Add((change.Revision, ts));
                }
            };
        });
        var results = new List<DbResult>();
        try
        {
            await Task.Delay(2000, _ct);
            foreach (var rate in rates)
            {
                foreach (var s in subscribers)
                {
                    lock (received[s.Index])
                    {
                        received[s.Index].Clear();
                    }
                }

                counters.Reset();
                var count = (int)Math.Round(rate * duration.TotalSeconds);
                var writeTable = new int[count];
                var writeRevision = new long[count];
                var writeReturned = new long[count];
                var random = new Random(rate);
                var tableOfWrite = Enumerable.Range(0, count).Select(_ => random.Next(tables)).ToArray();
                var framesAtEnd = Task.Delay(duration, _ct).ContinueWith(_ => Interlocked.Read(ref counters.Frames), TaskScheduler.Default);
                var writes = await Load.PacedAsync(
                    writers.Count,
                    rate,
                    duration,
                    (i, c) => writers[c].PutAsync("db:" + tableOfWrite[i].ToString(CultureInfo.InvariantCulture), $"w{rate}-{i}", i),
                    (i, _, now, entry) =>
                    {
                        writeTable[i] = tableOfWrite[i];
                        writeRevision[i] = entry.Revision;
                        writeReturned[i] = now;
                    },
                    TimeSpan.FromSeconds(15),
                    _ct);
                var frames = await framesAtEnd;
                // The writes answered by now are the ones checked; an answer that comes later is left out.
                var answered = writeReturned.Select(t => t != 0).ToArray();
                // Let delivery finish: every subscriber holds the last revision written to its table.
                var lastOfTable = new long[tables];
                for (var i = 0; i < count; i++)
                {
                    if (answered[i])
                    {
                        lastOfTable[writeTable[i]] = Math.Max(lastOfTable[writeTable[i]], writeRevision[i]);
                    }
                }

                await Load.UntilAsync(() => subscribers.All(s => s.Revision >= lastOfTable[s.Index % tables]), TimeSpan.FromSeconds(15));

                var returnedAt = new Dictionary<(int Table, long Revision), long>();
                var writesOfTable = new List<long>[tables];
                for (var t = 0; t < tables; t++)
                {
                    writesOfTable[t] = [];
                }

                for (var i = 0; i < count; i++)
                {
                    if (answered[i])
                    {
                        returnedAt[(writeTable[i], writeRevision[i])] = writeReturned[i];
                        writesOfTable[writeTable[i]].Add(writeRevision[i]);
                    }
                }

                var delivery = new Latencies(count * perTable);
                long early = 0, losses = 0;
                foreach (var s in subscribers)
                {
                    var table = s.Index % tables;
                    List<(long Revision, long Ts)> got;
                    lock (received[s.Index])
                    {
                        got = [.. received[s.Index]];
                    }

                    var seen = new HashSet<long>();
                    foreach (var (revision, ts) in got)
                    {
                        seen.Add(revision);
                        if (returnedAt.TryGetValue((table, revision), out var returned))
                        {
                            var ms = Latencies.Ms(returned, ts);
                            if (ms < 0)
                            {
                                early++;
                            }

                            delivery.Add(Math.Max(0, ms));
                        }
                    }

                    losses += writesOfTable[table].Count(r => !seen.Contains(r));
                }

                // Subscribers that failed to open are missing from every table count, not losses.
                var problems = counters.Closes + counters.Incomplete + counters.ResumeFailures == 0 ? "none" : counters.Problems();
                results.Add(new DbResult(tables, perTable, rate, writes, delivery, early, losses, counters.Duplicates, counters.Gaps, frames / duration.TotalSeconds, "", problems));
            }

            var views = await CompareViewsAsync(apiHost, subscribers, TableOf);
            results[^1] = results[^1] with { Views = views };
            for (var i = 0; i < results.Count - 1; i++)
            {
                results[i] = results[i] with { Views = "(checked after the last rate)" };
            }

            return results;
        }
        finally
        {
            await Load.CloseAllAsync(subscribers);
            await Load.CloseAllAsync(writers);
        }
    }

    /// <summary>"yes (N)" when every client's live keys and revisions equal the table's entries (GET /v1), else how many differ.</summary>
    private static async Task<string> CompareViewsAsync(ChildHost apiHost, List<BenchClient> clients, Func<int, string> tableOf)
    {
        var truth = new Dictionary<string, Dictionary<string, long>>(StringComparer.Ordinal);
        foreach (var table in clients.Select(c => tableOf(c.Index)).Distinct())
        {
            truth[table] = await ReadTableAsync(apiHost, table);
        }

        var differ = clients.Count(c =>
        {
            var expected = truth[tableOf(c.Index)];
            var view = c.LiveRevisions();
            return view.Count != expected.Count || view.Any(kv => !expected.TryGetValue(kv.Key, out var r) || r != kv.Value);
        });
        return differ == 0 ? $"yes ({clients.Count:N0})" : $"**no**: {differ:N0} of {clients.Count:N0} differ";
    }

    /// <summary>Every live key of a table and its revision, paging GET /v1/tables/{t}/entries.</summary>
    private static async Task<Dictionary<string, long>> ReadTableAsync(ChildHost host, string table)
    {
        var entries = new Dictionary<string, long>(StringComparer.Ordinal);
        string? after = null;
        do
        {
            var url = $"/v1/tables/{Uri.EscapeDataString(table)}/entries?limit=1000" + (after is null ? "" : "&after=" + Uri.EscapeDataString(after));
            using var page = JsonDocument.Parse(await host.Http.GetStringAsync(url));
            foreach (var entry in page.RootElement.GetProperty("entries").EnumerateArray())
            {
                entries[entry.GetProperty("key").GetString()!] = entry.GetProperty("revision").GetInt64();
            }

            after = page.RootElement.TryGetProperty("next", out var next) && next.ValueKind == JsonValueKind.String ? next.GetString() : null;
        }
        while (after is not null);
        return entries;
    }

    private sealed record DbResult(int Tables, int PerTable, int Rate, PacedResult Writes, Latencies Delivery, long Early, long Losses, long Duplicates, long Gaps, double MessagesPerSecond, string Views, string Problems);
}
