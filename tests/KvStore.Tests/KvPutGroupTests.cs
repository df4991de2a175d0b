using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using KvStore.TestInfrastructure;
using MySqlConnector;

namespace KvStore.Tests;

/// <summary>
/// Client-side group commit of unconditional puts. Two puts blocked on a held table row fill the
/// client's two put slots, so the puts issued next queue and run as groups once the slots' leases run out
/// (after 50 ms, or when the test fires them: <see cref="ManualTimers"/>).
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

    [Fact]
    public async Task A_put_claimed_alone_that_waits_for_a_lock_holds_back_the_queue_no_longer_than_a_lone_put()
    {
        var a = KvDatabase.NewTable("a");
        var b = KvDatabase.NewTable("b");
        await db.Client.PutAsync(a, "seed", 0);
        var (leases, client, holdA, blocker) = await HoldTableAndTakeSlotsAsync(a, b);
        try
        {
            // Two puts of one key: a group writes a key once, so each is claimed alone, one per slot.
            var toA = new[] { client.PutAsync(a, "k", 1), client.PutAsync(a, "k", 2) };
            leases.FireAll();
            await db.WaitForStatementsAsync(LonePutWaiting, count: 4); // the two blocking the slots and these two

            // Both slots now run a put blocked on A's row; the puts to B queue behind them. Like lone
            // puts, the puts to A give their slots to the queue when their leases run out.
            var toB = Enumerable.Range(0, 4).Select(i => client.PutAsync(b, "k" + i, i)).ToArray();
            leases.FireAll();
            var written = await Task.WhenAll(toB).WaitAsync(TimeSpan.FromSeconds(20));

            Assert.Equal(Enumerable.Range(2, 4).Select(r => (long)r), written.Select(e => e.Revision).Order());
            Assert.DoesNotContain(toA, put => put.IsCompleted);
            await using (var release = new MySqlCommand("ROLLBACK", holdA))
            {
                await release.ExecuteNonQueryAsync();
            }

            var entries = await Task.WhenAll(toA).WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal([2L, 3L], entries.Select(e => e.Revision).Order());
            var stored = (await client.GetAsync(a, "k"))!;
            Assert.Equal(3, stored.Revision);
            Assert.Equal(entries.Single(e => e.Revision == 3).Value.GetInt32(), stored.Value.GetInt32());
        }
        finally
        {
            await holdA.DisposeAsync();
            await blocker.ReleaseAsync();
        }
    }

    [Fact]
    public async Task A_grouped_put_whose_table_row_is_busy_honours_its_callers_cancellation_while_it_waits()
    {
        var a = KvDatabase.NewTable("a");
        var b = KvDatabase.NewTable("b");
        await db.Client.PutAsync(a, "seed", 0);
        var (leases, client, holdA, blocker) = await HoldTableAndTakeSlotsAsync(a, b);
        try
        {
            using var cts = new CancellationTokenSource();
            var cancelled = client.PutAsync(a, "cancelled", 1, cancellationToken: cts.Token);
            var grouped = client.PutAsync(b, "grouped", 2);
            leases.FireAll();

            // One group claims both puts: it commits the put to B and skips A's busy row, whose put then
            // runs on its own and waits for the row.
            Assert.Equal(2, (await grouped.WaitAsync(TimeSpan.FromSeconds(20))).Revision);
            await db.WaitForStatementsAsync($"INSERT INTO kv_tables%'{a}'%");
            Assert.False(cancelled.IsCompleted);
            await cts.CancelAsync();

            // innodb_lock_wait_timeout is 50 s: ending within 10 s means the wait itself was stopped.
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.True(cancelled.IsCanceled);
        }
        finally
        {
            await holdA.DisposeAsync();
            await blocker.ReleaseAsync();
        }

        // A's row is free: a put still waiting for it would now be written.
        await Eventually.UntilAsync(
            async () => (await db.Server.SessionsRunningAsync(db.Name, $"%'{a}'%")).Count == 0,
            () => $"statements on table {a} still run");
        Assert.Null(await client.GetAsync(a, "cancelled"));
        Assert.Equal(1, await client.GetTableRevisionAsync(a));
    }

    [Fact]
    public async Task Grouped_puts_that_wait_for_their_busy_table_row_return_exactly_what_they_committed()
    {
        // With a token that can cancel, such puts wait for the row in a round trip of their own and
        // write in a second one; the result must be the unconditional put's all the same.
        var a = KvDatabase.NewTable("a");
        var b = KvDatabase.NewTable("b");
        var live = await db.Client.PutAsync(a, "live", 0, new KvPutOptions { Ttl = TimeSpan.FromHours(1) });
        await db.Client.PutAsync(a, "dead", 0);
        await db.Client.DeleteAsync(a, "dead");
        var (leases, client, holdA, blocker) = await HoldTableAndTakeSlotsAsync(a, b);
        KvEntry[] results;
        try
        {
            using var cts = new CancellationTokenSource();
            var waiting = new[]
            {
                client.PutAsync(a, "live", "live", new KvPutOptions { Ttl = TimeSpan.FromHours(2) }, cts.Token),
                client.PutAsync(a, "dead", "dead", cancellationToken: cts.Token),
                client.PutAsync(a, "new", "new", cancellationToken: cts.Token),
            };
            var grouped = client.PutAsync(b, "grouped", 1);
            leases.FireAll();
            await grouped.WaitAsync(TimeSpan.FromSeconds(20));
            await db.WaitForStatementsAsync($"INSERT INTO kv_tables%'{a}'%", count: 3);
            await using (var release = new MySqlCommand("ROLLBACK", holdA))
            {
                await release.ExecuteNonQueryAsync();
            }

            results = await Task.WhenAll(waiting).WaitAsync(TimeSpan.FromSeconds(20));
        }
        finally
        {
            await holdA.DisposeAsync();
            await blocker.ReleaseAsync();
        }

        // Seeding took revisions 1-3.
        Assert.Equal([4L, 5L, 6L], results.Select(r => r.Revision).Order());
        var stored = (await client.GetChangesAsync(a, 0)).Changes.ToDictionary(c => c.Key);
        foreach (var result in results)
        {
            var row = stored[result.Key];
            Assert.Equal(result.Key, result.Value.GetString());
            Assert.Equal(row.Value.GetString(), result.Value.GetString());
            Assert.Equal(row.Revision, result.Revision);
            Assert.Equal(row.CreatedRevision, result.CreatedRevision);
            Assert.Equal(row.CreatedAt, result.CreatedAt);
            Assert.Equal(row.UpdatedAt, result.UpdatedAt);
            Assert.Equal(row.ExpiresAt, result.ExpiresAt);
            Assert.Equal(KvEntryState.Live, row.State);
        }

        // A live key keeps its creation and takes the new TTL; a deleted or new key is (re-)created.
        var updated = results.Single(r => r.Key == "live");
        Assert.Equal(live.CreatedRevision, updated.CreatedRevision);
        Assert.Equal(live.CreatedAt, updated.CreatedAt);
        Assert.True(updated.ExpiresAt > live.ExpiresAt);
        foreach (var created in results.Where(r => r.Key != "live"))
        {
            Assert.Equal(created.Revision, created.CreatedRevision);
            Assert.Null(created.ExpiresAt);
        }
    }

    [Fact]
    public async Task A_put_arriving_when_the_put_queue_is_full_fails_at_once_and_writes_nothing()
    {
        var table = KvDatabase.NewTable();
        await db.Client.PutAsync(table, "seed", 0);
        var leases = new ManualTimers();
        var client = db.CreateClient(o =>
        {
            o.TimeProvider = leases;
            o.MaxQueuedPuts = 2;
        });
        using var rejections = new OperationRecorder("rejected");
        var blocker = await TakeSlotsAsync(client);
        Task<KvEntry>[] queued;
        Task<KvEntry> rejected;
        try
        {
            queued = [client.PutAsync(table, "q0", 0), client.PutAsync(table, "q1", 1)];
            rejected = client.PutAsync(table, "rejected", 2);

            Assert.True(rejected.IsFaulted, "the put over the queue bound did not fail at once");
            Assert.DoesNotContain(queued, put => put.IsCompleted);
            leases.FireAll();
            await Task.WhenAll(queued).WaitAsync(TimeSpan.FromSeconds(20));
        }
        finally
        {
            await blocker.ReleaseAsync();
        }

        var ex = await Assert.ThrowsAsync<KvStoreException>(() => rejected);
        Assert.Equal(KvErrorCodes.Unavailable, ex.Code);
        Assert.Contains("MaxQueuedPuts", ex.Message);
        Assert.Contains("nothing was written", ex.Message);
        Assert.Equal(1, rejections.Count);
        Assert.Null(await client.GetAsync(table, "rejected"));
        Assert.Equal(3, await client.GetTableRevisionAsync(table));
    }

    /// <summary>
    /// Seeds table <paramref name="b"/>, holds <paramref name="a"/>'s revision row, and takes both put
    /// slots of a fresh client whose leases fire only when the test says (<see cref="TakeSlotsAsync"/>).
    /// </summary>
    private async Task<(ManualTimers Leases, KvStoreClient Client, MySqlConnection HoldA, Blocker Blocker)> HoldTableAndTakeSlotsAsync(string a, string b)
    {
        await db.Client.PutAsync(b, "seed", 0);
        var leases = new ManualTimers();
        var client = db.CreateClient(o => o.TimeProvider = leases);
        var holdA = await db.HoldTableRowAsync(a);
        return (leases, client, holdA, await TakeSlotsAsync(client));
    }

    /// <summary>
    /// What a session shows while a lone put waits for its table's revision row: the statement of the
    /// revision trigger, which does not name the table (a conditional write's first round trip does).
    /// </summary>
    private const string LonePutWaiting = "INSERT INTO kv_tables%NEW.tbl%";

    /// <summary>
    /// Takes both put slots of a fresh client (its first puts) with two puts blocked on a held row: with
    /// <see cref="ManualTimers"/> as the client's clock, the puts issued next stay queued until the test
    /// fires the slots' leases, and then run as groups (or alone, in the slots).
    /// </summary>
    private async Task<Blocker> TakeSlotsAsync(KvStoreClient client)
    {
        var table = KvDatabase.NewTable("blocker");
        await db.Client.PutAsync(table, "seed", 0);
        var holder = await db.HoldTableRowAsync(table);
        var blocked = Enumerable.Range(0, 2).Select(i => client.PutAsync(table, "b" + i, i)).ToArray();
        await db.WaitForStatementsAsync(LonePutWaiting, count: 2);
        return new Blocker(holder, blocked);
    }

    /// <summary>
    /// Holds a table row and starts two puts on it: they take the client's two put slots and block,
    /// so the next puts queue until the slots' 50 ms leases run out and then run as groups.
    /// </summary>
    private async Task<Blocker> BlockSlotsAsync(KvStoreClient client)
    {
        var table = KvDatabase.NewTable("blocker");
        await client.PutAsync(table, "seed", 0);
        var holder = await db.HoldTableRowAsync(table);
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

    /// <summary>Counts the puts recorded in <c>kvstore.operations</c> with one outcome while alive.</summary>
    private sealed class OperationRecorder : IDisposable
    {
        private readonly MeterListener _listener = new();
        private int _count;

        public OperationRecorder(string outcome)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == "KvStore" && instrument.Name == "kvstore.operations")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                string? operation = null, seen = null;
                foreach (var tag in tags)
                {
                    if (tag.Key == "operation")
                    {
                        operation = tag.Value as string;
                    }
                    else if (tag.Key == "outcome")
                    {
                        seen = tag.Value as string;
                    }
                }

                if (operation == "put" && seen == outcome)
                {
                    Interlocked.Add(ref _count, (int)value);
                }
            });
            _listener.Start();
        }

        public int Count => Volatile.Read(ref _count);

        public void Dispose() => _listener.Dispose();
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
