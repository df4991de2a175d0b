using System.Text.Json;
using KvStore.TestInfrastructure;

namespace KvStore.Cdc.Tests;

/// <summary>Checkpoints, leadership, reconnects and resync against live MariaDB servers.</summary>
public sealed class ChangeStreamResilienceTests(CdcDatabase db) : IClassFixture<CdcDatabase>
{
    private KvStoreClient Kv => db.Client;

    private static string NewTable() => "t-" + Guid.NewGuid().ToString("N")[..10];

    [Fact]
    public async Task A_restarted_reader_resumes_right_after_the_last_acknowledged_batch()
    {
        var table = NewTable();
        var name = "restart-" + Guid.NewGuid().ToString("N")[..6];
        var first = db.NewStream(name);
        await using (var probe = await StreamProbe.StartAsync(first, acknowledge: false))
        {
            await Kv.PutAsync(table, "a", 1);
            await Kv.PutAsync(table, "b", 2);
            await Kv.PutAsync(table, "c", 3);
            var acked = await probe.NextAsync();
            await first.AcknowledgeAsync(acked); // only the first of three
            Assert.Equal("a", acked.Changes[0].Key);
        }

        await Kv.PutAsync(table, "d", 4); // committed while no reader runs
        await using var second = await StreamProbe.StartAsync(db.NewStream(name));
        var resumed = await second.UntilRevisionAsync(table, 4);

        Assert.Equal(["b", "c", "d"], resumed.SelectMany(b => b.Changes).Where(c => c.Table == table).Select(c => c.Key));
    }

    [Fact]
    public async Task Only_one_reader_is_active_and_a_standby_takes_over_when_the_leader_dies_with_nothing_lost()
    {
        var table = NewTable();
        var name = "leader-" + Guid.NewGuid().ToString("N")[..6];
        var leader = db.NewStream(name);
        var leaderProbe = await StreamProbe.StartAsync(leader);
        var standby = db.NewStream(name);
        await using var standbyProbe = new StreamProbe(standby);
        await WaitForStateAsync(standby, "standby");

        for (var i = 1; i <= 5; i++)
        {
            await Kv.PutAsync(table, "k" + i, i);
        }

        var seenByLeader = await leaderProbe.UntilRevisionAsync(table, 5);
        Assert.Equal("standby", standby.Status.State);
        Assert.False(standby.Streaming.IsCompleted);

        await leaderProbe.DisposeAsync(); // the leader goes away; its lock connection closes
        for (var i = 6; i <= 8; i++)
        {
            await Kv.PutAsync(table, "k" + i, i);
        }

        await standby.Streaming.WaitAsync(TimeSpan.FromSeconds(30));
        var seenByStandby = await standbyProbe.UntilRevisionAsync(table, 8);
        var all = seenByLeader.Concat(seenByStandby).SelectMany(b => b.Changes).Where(c => c.Table == table).Select(c => c.Revision).ToHashSet();

        Assert.Equal(Enumerable.Range(1, 8).Select(i => (long)i).ToHashSet(), all);
    }

    [Fact]
    public async Task A_server_restart_mid_stream_loses_nothing_and_leaves_no_gap()
    {
        await using var server = await MariaDbServer.StartAsync("cdc-restart");
        await server.ExecuteAsync("CREATE DATABASE kv");
        var cs = server.ConnectionString("kv");
        await KvSchema.MigrateAsync(cs);
        await using var kv = new KvStoreClient(new KvStoreOptions { ConnectionString = cs, MaxRetryAttempts = 20, RetryBaseDelay = TimeSpan.FromMilliseconds(50) });
        var table = NewTable();
        await using var probe = await StreamProbe.StartAsync(CdcDatabase.NewStream(cs, "restart"));

        for (var i = 1; i <= 20; i++)
        {
            await kv.IncrementAsync(table, "n", 1);
        }

        await server.StopAsync();
        await server.RestartAsync();
        for (var i = 21; i <= 40; i++)
        {
            await kv.IncrementAsync(table, "n", 1);
        }

        var batches = await probe.UntilRevisionAsync(table, 40, TimeSpan.FromSeconds(90));
        var revisions = batches.SelectMany(b => b.Changes).Where(c => c.Table == table).Select(c => c.Revision).Distinct().Order().ToList();

        Assert.Equal(Enumerable.Range(1, 40).Select(i => (long)i), revisions);
        Assert.Equal(40, batches.SelectMany(b => b.Changes).Last(c => c.Table == table).Value.GetInt64());
    }

    [Fact]
    public async Task A_checkpoint_into_a_purged_binlog_fails_with_resync_required()
    {
        await using var server = await MariaDbServer.StartAsync("cdc-purge");
        await server.ExecuteAsync("CREATE DATABASE kv");
        var cs = server.ConnectionString("kv");
        await KvSchema.MigrateAsync(cs);
        await using var kv = new KvStoreClient(new KvStoreOptions { ConnectionString = cs });
        var table = NewTable();
        await using (var probe = await StreamProbe.StartAsync(CdcDatabase.NewStream(cs, "purged")))
        {
            await kv.PutAsync(table, "a", 1);
            await probe.NextAsync();
        }

        // Rotate twice with writes in between, then purge everything before the current file.
        await server.ExecuteAsync("FLUSH BINARY LOGS");
        await kv.PutAsync(table, "b", 2);
        await server.ExecuteAsync("FLUSH BINARY LOGS");
        await server.PurgeBinaryLogsToAsync();
        // The GTID state of the checkpoint is no longer in any binlog: MariaDB refuses, and so must we.
        await using var restarted = new StreamProbe(CdcDatabase.NewStream(cs, "purged"));
        var error = await restarted.FailureAsync(TimeSpan.FromSeconds(60));

        var resync = Assert.IsType<KvResyncRequiredException>(error);
        Assert.Contains("resynchronize", resync.Message);
    }

    [Fact]
    public async Task Rebuilding_tables_from_the_stream_of_a_random_workload_equals_the_database()
    {
        var tables = Enumerable.Range(0, 4).Select(_ => NewTable()).ToArray();
        var random = new Random(4242);
        await using var probe = await StreamProbe.StartAsync(db.NewStream());
        var maxRevision = new Dictionary<string, long>();

        for (var i = 0; i < 2500; i++)
        {
            var table = tables[random.Next(tables.Length)];
            var key = "k" + random.Next(40);
            KvEntry? last = null;
            switch (random.Next(7))
            {
                case 0 or 1:
                    last = await Kv.PutAsync(table, key, new { i, text = new string('x', random.Next(50)) });
                    break;
                case 2:
                    last = await Kv.DeleteAsync(table, key);
                    break;
                case 3:
                    try
                    {
                        last = await Kv.IncrementAsync(table, "n" + random.Next(5), random.Next(-3, 10));
                    }
                    catch (KvStoreException ex) when (ex.Code == KvErrorCodes.NotAnInteger)
                    {
                    }

                    break;
                case 4:
                    var batch = new KvBatch(table);
                    foreach (var k in Enumerable.Range(0, random.Next(1, 5)).Select(_ => "b" + random.Next(20)).Distinct())
                    {
                        batch.Put(k, JsonDocument.Parse(i.ToString()).RootElement);
                    }

                    last = (await Kv.CommitAsync(batch)).Entries[^1];
                    break;
                case 5:
                    try
                    {
                        last = await Kv.SetTtlAsync(table, key, TimeSpan.FromHours(1));
                    }
                    catch (KvStoreException ex) when (ex.Code == KvErrorCodes.NotFound)
                    {
                    }

                    break;
                default:
                    try
                    {
                        last = await Kv.PutAsync(table, key, i, new KvPutOptions { IfAbsent = true });
                    }
                    catch (KvConflictException)
                    {
                    }

                    break;
            }

            if (last is not null)
            {
                maxRevision[table] = Math.Max(maxRevision.GetValueOrDefault(table), last.Revision);
            }
        }

        // Rebuild: per key, the change with the highest revision wins; tombstones remove.
        var rebuilt = tables.ToDictionary(t => t, _ => new Dictionary<string, KvChange>());
        var pending = maxRevision.ToDictionary(kv => kv.Key, kv => kv.Value);
        while (pending.Count > 0)
        {
            var batch = await probe.NextAsync(TimeSpan.FromSeconds(60));
            foreach (var change in batch.Changes.Where(c => rebuilt.ContainsKey(c.Table)))
            {
                var state = rebuilt[change.Table];
                if (!state.TryGetValue(change.Key, out var seen) || seen.Revision < change.Revision)
                {
                    state[change.Key] = change;
                }

                if (pending.TryGetValue(change.Table, out var target) && change.Revision >= target)
                {
                    pending.Remove(change.Table);
                }
            }
        }

        foreach (var table in tables)
        {
            var live = rebuilt[table].Values.Where(c => c.Operation == KvChangeOperation.Put).OrderBy(c => c.Key, StringComparer.Ordinal).ToList();
            var page = await Kv.ListAsync(table, limit: 1000);
            Assert.Equal(page.Entries.Select(e => e.Key), live.Select(c => c.Key));
            Assert.Equal(page.Entries.Select(e => e.Revision), live.Select(c => c.Revision));
            Assert.Equal(page.Entries.Select(e => e.Value.GetRawText()), live.Select(c => c.Value.GetRawText()));
            Assert.Equal(page.Entries.Select(e => e.ExpiresAt), live.Select(c => c.ExpiresAt));
        }
    }

    private static Task WaitForStateAsync(KvChangeStream stream, string state) =>
        Eventually.UntilAsync(() => stream.Status.State == state, () => $"stream never reached '{state}' (is '{stream.Status.State}')");
}
