using System.Diagnostics;
using System.Globalization;
using KvStore.TestInfrastructure;
using Microsoft.AspNetCore.SignalR.Client;

namespace KvStore.Bench.Realtime;

internal sealed partial class RealtimeBenchmark
{
    private const int StormTables = 4;
    private const int StormKeys = 50;

    /// <summary>
    /// Reconnect storm: 10,000 subscribers of a few tables; the host is SIGKILLed and restarted on the
    /// same port while writes to other tables go on; changes are written to the subscribed tables while it
    /// is down, so every resume has something to deliver. Measures how long until every client has
    /// resumed with exact data, the database's statements/s meanwhile, and the other writes' latency.
    /// </summary>
    private async Task StormAsync()
    {
        var stormWindow = Seconds(30);
        var before = TimeSpan.FromSeconds(5);
        var cs = await CreateDatabaseAsync("rt_storm");
        var port = LocalServer.FreePort();
        string TableOf(int i) => "storm:" + (i % StormTables).ToString(CultureInfo.InvariantCulture);
        await using var kv = new KvStoreClient(new KvStoreOptions { ConnectionString = cs });
        for (var t = 0; t < StormTables; t++)
        {
            for (var k = 0; k < StormKeys; k++)
            {
                await kv.PutAsync(TableOf(t), "k" + k, k, cancellationToken: _ct);
            }
        }

        var first = await StartKvHostAsync(cs, "kvstore", port);
        ChildHost? second = null;
        var counters = new ClientCounters();
        var writerCounters = new ClientCounters();
        var subscribers = new List<BenchClient>();
        var writers = new List<BenchClient>();
        try
        {
            writers = await OpenKvClientsAsync([first.BaseUrl], 0, 4, writerCounters, null);
            subscribers = await OpenKvClientsAsync([first.BaseUrl], 100, _maxConnections, counters, TableOf);
            var expected = new long[StormTables];
            for (var t = 0; t < StormTables; t++)
            {
                expected[t] = await kv.GetTableRevisionAsync(TableOf(t), _ct);
            }

            var atStart = subscribers.Count(s => s.Revision == expected[s.Index % StormTables]);
            await Task.Delay(2000, _ct);
            counters.Reset();

            // Other writes: 200/s on 100 other tables through hub Put, through the kill and the storm.
            var total = before + stormWindow;
            var count = (int)(200 * total.TotalSeconds);
            var dueAt = new long[count];
            var doneAt = new long[count];
            var writes = Load.PacedAsync(
                writers.Count,
                200,
                total,
                (i, c) => writers[c].PutAsync("other:" + (i % 100).ToString(CultureInfo.InvariantCulture), "k", i),
                (i, due, done, _) =>
                {
                    dueAt[i] = due;
                    doneAt[i] = done;
                },
                TimeSpan.FromSeconds(10),
                _ct,
                maxInFlight: 500);
            await Task.Delay(before, _ct);

            var sql0 = await SqlCounters.ReadAsync(_server.AdminConnectionString);
            var killedAt = Stopwatch.GetTimestamp();
            first.Kill();
            // While the host is down: 10 changes per subscribed table, written through the library.
            for (var t = 0; t < StormTables; t++)
            {
                for (var k = 0; k < 10; k++)
                {
                    expected[t] = (await kv.PutAsync(TableOf(t), "k" + k, 1000 + k, cancellationToken: _ct)).Revision;
                }
            }

            second = await StartKvHostAsync(cs, "kvstore (restarted)", port);
            var readyAt = Stopwatch.GetTimestamp();
            bool Resumed(BenchClient s) => !s.Disconnected && s.ResumedAt > killedAt && s.Revision >= expected[s.Index % StormTables];
            var all = await Load.UntilAsync(() => subscribers.All(Resumed), TimeSpan.FromSeconds(120));
            var allAt = Stopwatch.GetTimestamp();
            var sql1 = await SqlCounters.ReadAsync(_server.AdminConnectionString);
            var resumed = subscribers.Count(Resumed);
            var lastResume = subscribers.Where(s => s.ResumedAt > killedAt).Select(s => s.ResumedAt).DefaultIfEmpty(0).Max();
            var views = await CompareViewsAsync(second, subscribers, TableOf);
            var writeResult = await writes;

            var beforeKill = new Latencies();
            var duringStorm = new Latencies();
            var afterStorm = new Latencies();
            for (var i = 0; i < count; i++)
            {
                if (doneAt[i] == 0)
                {
                    continue;
                }

                var ms = Latencies.Ms(dueAt[i], doneAt[i]);
                (dueAt[i] < killedAt ? beforeKill : dueAt[i] <= allAt ? duringStorm : afterStorm).Add(ms);
            }

            var sql = sql1.RatesSince(sql0);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{subscribers.Count:N0} subscribers of {StormTables} tables ({StormKeys} keys each; {atStart:N0} held the table's revision before the kill); SIGKILL, 10 puts per subscribed table through the library while the host is down, restart on the same port. Clients reconnect after 250 ms · 2ⁿ (≤ 5 s) and call Subscribe(table, resumeFrom = held). Other writes: hub `Put` at 200/s on 100 other tables from 4 connections (they fail while the host is down)."));
            Console.WriteLine();
            Console.WriteLine("| subscribers | resumed exact | all resumed after kill | after restart ready | kill → ready | views equal the tables | DB statements/s, kill → all resumed (all / selects / writes) | other writes p50 / p99 ms: before kill | during storm | after | other writes failed | resets | client problems |");
            Console.WriteLine("|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {subscribers.Count:N0} | {resumed:N0} | {(all is null ? "not within 120 s" : $"{Latencies.Ms(killedAt, lastResume) / 1000:0.0} s")} | {(all is null ? "–" : $"{Math.Max(0, Latencies.Ms(readyAt, lastResume)) / 1000:0.0} s")} | {Latencies.Ms(killedAt, readyAt) / 1000:0.0} s | {views} | {sql.All:N0} / {sql.Selects:N0} / {sql.Writes:N0} | {beforeKill.P50P99()} | {duringStorm.P50P99()} ({duringStorm.Count:N0}) | {afterStorm.P50P99()} | {writeResult.ErrorSummary()} | {counters.Resets:N0} | {counters.Problems()} |"));
            Console.WriteLine();
            Console.WriteLine($"'During storm' = other writes due from the kill until every client had resumed ({Latencies.Ms(killedAt, allAt) / 1000:0.0} s) that succeeded (those due while the host was down failed fast: 'other writes failed'). Clients resume while /readyz is still starting (a subscribe waits for the change stream), so 'after restart ready' can be 0. Re-deliveries: after the restart the change stream may send changes again (at-least-once); clients drop them by revision. Restarted host: {second.SlowConsumerLogs} slow-consumer warnings logged.");
        }
        finally
        {
            await Load.CloseAllAsync(subscribers);
            await Load.CloseAllAsync(writers);
            await first.DisposeAsync();
            if (second is not null)
            {
                await second.DisposeAsync();
            }
        }
    }
}
