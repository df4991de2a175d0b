using System.Collections.Concurrent;
using System.Diagnostics;
using MySqlConnector;

namespace KvStore.Tests;

/// <summary>
/// Client-side group commit of unconditional puts. Two puts blocked on a held table row fill the
/// client's two put slots, so the puts issued next queue and run as groups once the slots' leases run out.
/// </summary>
public sealed class KvPutGroupTests(KvDatabase db) : IClassFixture<KvDatabase>
{
    [Fact]
    public async Task Grouped_puts_return_exactly_what_each_committed_with_gapless_revisions()
    {
        var client = db.CreateClient();
        var tables = Enumerable.Range(0, 3).Select(_ => KvDatabase.NewTable()).ToArray();
        var before = new Dictionary<(string, string), KvEntry>();
        foreach (var table in tables)
        {
            for (var i = 0; i < 5; i++)
            {
                before[(table, "live-" + i)] = await client.PutAsync(table, "live-" + i, i);
                await client.PutAsync(table, "dead-" + i, i);
                await client.DeleteAsync(table, "dead-" + i);
            }
        }

        using var groups = new GroupRecorder();
        var blocker = await BlockSlotsAsync(client);
        var puts = tables.SelectMany(table => Enumerable.Range(0, 5).SelectMany(i => new[]
        {
            (Table: table, Key: "new-" + i, Ttl: (TimeSpan?)null),
            (Table: table, Key: "live-" + i, Ttl: TimeSpan.FromHours(i + 1)),
            (Table: table, Key: "dead-" + i, Ttl: null),
        })).ToList();
        var results = await Task.WhenAll(puts.Select(p => client.PutAsync(p.Table, p.Key, p.Key, new KvPutOptions { Ttl = p.Ttl })))
            .WaitAsync(TimeSpan.FromSeconds(20));
        await blocker.ReleaseAsync();

        Assert.True(groups.LargestGroup > 1, "the puts were not coalesced");
        foreach (var table in tables)
        {
            var changes = await client.GetChangesAsync(table, 0);
            var stored = changes.Changes.ToDictionary(c => c.Key);
            var mine = results.Where(r => r.Table == table).ToList();
            foreach (var result in mine)
            {
                var row = stored[result.Key];
                Assert.Equal(row.Revision, result.Revision);
                Assert.Equal(row.CreatedRevision, result.CreatedRevision);
                Assert.Equal(row.CreatedAt, result.CreatedAt);
                Assert.Equal(row.UpdatedAt, result.UpdatedAt);
                Assert.Equal(row.ExpiresAt, result.ExpiresAt);
                Assert.Equal(result.Key, result.Value.GetString());
                if (before.TryGetValue((table, result.Key), out var earlier))
                {
                    // A live key keeps its creation; its TTL is the new one.
                    Assert.Equal(earlier.CreatedRevision, result.CreatedRevision);
                    Assert.Equal(earlier.CreatedAt, result.CreatedAt);
                    Assert.NotNull(result.ExpiresAt);
                }
                else
                {
                    // New and deleted keys are (re-)created by the put.
                    Assert.Equal(result.Revision, result.CreatedRevision);
                    Assert.Equal(result.UpdatedAt, result.CreatedAt);
                    Assert.Null(result.ExpiresAt);
                }
            }

            // 15 seeding changes (5 live puts, 5 puts and 5 deletes of dead keys), then one revision per put.
            Assert.Equal(Enumerable.Range(16, 15).Select(r => (long)r), mine.Select(r => r.Revision).Order());
            Assert.Equal(30, changes.Revision);
        }
    }

    [Fact]
    public async Task A_put_the_server_rejects_fails_alone_and_its_group_commits_without_it()
    {
        await db.Server.ExecuteAsync(
            "CREATE TRIGGER kv_test_poison BEFORE INSERT ON kv_entries FOR EACH ROW " +
            "IF NEW.k = 'poison' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'poisoned key'; END IF",
            db.Name);
        var client = db.CreateClient();
        var table = KvDatabase.NewTable();
        try
        {
            await client.PutAsync(table, "seed", 0);
            using var groups = new GroupRecorder();
            var blocker = await BlockSlotsAsync(client);
            var keys = Enumerable.Range(0, 10).Select(i => "k" + i).Append("poison").Concat(Enumerable.Range(10, 10).Select(i => "k" + i)).ToList();
            var puts = keys.Select(k => client.PutAsync(table, k, k)).ToList();
            MySqlException poisoned;
            KvEntry[] results;
            try
            {
                poisoned = await Assert.ThrowsAsync<MySqlException>(() => puts[10].WaitAsync(TimeSpan.FromSeconds(20)));
                results = await Task.WhenAll(puts.Where((_, i) => i != 10)).WaitAsync(TimeSpan.FromSeconds(20));
            }
            finally
            {
                await blocker.ReleaseAsync();
            }

            Assert.Contains("poisoned key", poisoned.Message);
            Assert.True(groups.LargestGroup > 1, "the puts were not coalesced");
            // The failed group left no trace: revisions stay gapless and each caller's is its row's.
            Assert.Equal(Enumerable.Range(2, 20).Select(r => (long)r), results.Select(r => r.Revision).Order());
            foreach (var result in results)
            {
                Assert.Equal(result.Revision, (await client.GetAsync(table, result.Key))!.Revision);
            }

            Assert.Null(await client.GetAsync(table, "poison"));
        }
        finally
        {
            await db.Server.ExecuteAsync("DROP TRIGGER kv_test_poison", db.Name);
        }
    }

    [Fact]
    public async Task A_queued_put_can_be_cancelled_and_is_never_written()
    {
        var client = db.CreateClient();
        var table = KvDatabase.NewTable();
        await client.PutAsync(table, "seed", 0);
        var blocker = await BlockSlotsAsync(client);
        using var cts = new CancellationTokenSource();
        var put = client.PutAsync(table, "cancelled", 1, cancellationToken: cts.Token);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => put);
        await blocker.ReleaseAsync();
        Assert.Null(await client.GetAsync(table, "cancelled"));
        Assert.Equal(1, await client.GetTableRevisionAsync(table));
    }

    [Fact]
    public async Task Cancelled_queued_puts_do_not_strand_a_later_put_of_the_same_key()
    {
        // Two cancelled puts of a key ahead of a live one: a group must not come back empty (and let its
        // drain loop end) while the live put still waits in the queue.
        var client = db.CreateClient();
        var table = KvDatabase.NewTable();
        await client.PutAsync(table, "seed", 0);
        var blocker = await BlockSlotsAsync(client);
        using var cts = new CancellationTokenSource();
        var cancelled = Enumerable.Range(0, 2).Select(i => client.PutAsync(table, "k", i, cancellationToken: cts.Token)).ToArray();
        var live = client.PutAsync(table, "k", 42);
        await cts.CancelAsync();

        var entry = await live.WaitAsync(TimeSpan.FromSeconds(30));
        await blocker.ReleaseAsync();

        Assert.Equal(42, entry.Value.GetInt32());
        Assert.Equal(42, (await client.GetAsync(table, "k"))!.Value.GetInt32());
        foreach (var put in cancelled)
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => put);
        }
    }

    [Fact]
    public async Task Grouped_puts_and_conditional_writes_on_shared_tables_never_deadlock()
    {
        var client = db.CreateClient();
        var tables = Enumerable.Range(0, 4).Select(_ => KvDatabase.NewTable()).ToArray();
        foreach (var table in tables)
        {
            await client.PutAsync(table, "created", 0);
        }

        using var retries = new RetryRecorder();
        using var groups = new GroupRecorder();
        var written = new ConcurrentDictionary<string, int>();
        await Task.WhenAll(Enumerable.Range(0, 32).Select(worker => Task.Run(async () =>
        {
            for (var i = 0; i < 20; i++)
            {
                var table = tables[(worker + i) % tables.Length];
                if (i % 5 == 0)
                {
                    await client.IncrementAsync(table, "counter", 1);
                }
                else
                {
                    await client.PutAsync(table, $"w{worker}-{i % 3}", i);
                }

                written.AddOrUpdate(table, 1, (_, n) => n + 1);
            }
        })));

        Assert.True(retries.Count("deadlock") == 0, await db.LatestDeadlockAsync());
        foreach (var table in tables)
        {
            Assert.Equal(1 + written[table], await client.GetTableRevisionAsync(table));
        }
    }

    /// <summary>
    /// Holds a table row and starts two puts on it: they take the client's two put slots and block,
    /// so the next puts queue until the slots' 50 ms leases run out and then run as groups.
    /// </summary>
    private async Task<Blocker> BlockSlotsAsync(KvStoreClient client)
    {
        var table = KvDatabase.NewTable("blocker");
        await client.PutAsync(table, "seed", 0);
        var holder = await db.OpenAsync();
        await using (var hold = new MySqlCommand("START TRANSACTION; SELECT rev FROM kv_tables WHERE name = @t FOR UPDATE", holder))
        {
            hold.Parameters.AddWithValue("@t", table);
            await hold.ExecuteScalarAsync();
        }

        var blocked = Enumerable.Range(0, 2).Select(i => client.PutAsync(table, "b" + i, i)).ToArray();
        return new Blocker(holder, blocked);
    }

    private sealed record Blocker(MySqlConnection Holder, Task<KvEntry>[] Blocked)
    {
        public async Task ReleaseAsync()
        {
            await using (var rollback = new MySqlCommand("ROLLBACK", Holder))
            {
                await rollback.ExecuteNonQueryAsync();
            }

            await Task.WhenAll(Blocked);
            await Holder.DisposeAsync();
        }
    }

    /// <summary>Records the size of every put group the client runs while alive.</summary>
    private sealed class GroupRecorder : IDisposable
    {
        private readonly ActivityListener _listener;
        private int _largest;

        public GroupRecorder()
        {
            _listener = new ActivityListener
            {
                ShouldListenTo = source => source.Name == "KvStore",
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
                ActivityStopped = activity =>
                {
                    if (activity.OperationName == "kvstore.put_group" && activity.GetTagItem("kvstore.puts") is int puts)
                    {
                        InterlockedMax(ref _largest, puts);
                    }
                },
            };
            ActivitySource.AddActivityListener(_listener);
        }

        public int LargestGroup => Volatile.Read(ref _largest);

        public void Dispose() => _listener.Dispose();

        private static void InterlockedMax(ref int target, int value)
        {
            var current = Volatile.Read(ref target);
            while (value > current && Interlocked.CompareExchange(ref target, value, current) is var seen && seen != current)
            {
                current = seen;
            }
        }
    }
}
