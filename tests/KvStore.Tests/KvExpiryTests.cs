using KvStore.Expiry;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace KvStore.Tests;

public sealed class KvExpiryTests(KvDatabase db) : IClassFixture<KvDatabase>
{
    private KvStoreClient Kv => db.Client;

    private KvExpiryService NewService(Action<KvExpiryOptions>? configure = null, KvStoreClient? client = null)
    {
        var options = new KvExpiryOptions { Interval = TimeSpan.FromMilliseconds(20), LockName = "kvstore.expiry." + db.Name };
        configure?.Invoke(options);
        return new KvExpiryService(client ?? Kv, Options.Create(options), NullLogger<KvExpiryService>.Instance);
    }

    [Fact]
    public async Task Expired_key_is_invisible_to_every_read_the_moment_it_expires()
    {
        var table = KvDatabase.NewTable();
        var entry = await Kv.PutAsync(table, "short", 1, new KvPutOptions { Ttl = TimeSpan.FromMilliseconds(400) });
        await Kv.PutAsync(table, "long", 2, new KvPutOptions { Ttl = TimeSpan.FromHours(1) });
        Assert.NotNull(await Kv.GetAsync(table, "short"));

        await db.WaitForServerTimeAsync(entry.ExpiresAt!.Value);

        Assert.Null(await Kv.GetAsync(table, "short"));
        Assert.Equal(["long"], (await Kv.GetManyAsync(table, ["short", "long"])).Select(e => e.Key));
        Assert.Equal(["long"], (await Kv.ListAsync(table)).Entries.Select(e => e.Key));
        // Still a row (no tombstone yet, no revision): the expiry service makes the change.
        Assert.Equal(2, await db.RawEntryCountAsync(table));
    }

    [Fact]
    public async Task Expired_key_counts_as_absent_for_writes()
    {
        var table = KvDatabase.NewTable();
        var entry = await Kv.PutAsync(table, "k", 41, new KvPutOptions { Ttl = TimeSpan.FromMilliseconds(200) });
        await db.WaitForServerTimeAsync(entry.ExpiresAt!.Value);

        var incremented = await Kv.IncrementAsync(table, "k", 1);
        await Assert.ThrowsAsync<KvStoreException>(() => Kv.SetTtlAsync(KvDatabase.NewTable(), "k", TimeSpan.FromSeconds(1)));

        Assert.Equal(1, incremented.Value.GetInt64());
        Assert.Equal(incremented.Revision, incremented.CreatedRevision);
        Assert.Null(incremented.ExpiresAt);
    }

    [Fact]
    public async Task Expiry_service_turns_expired_keys_into_expired_tombstones_with_new_revisions()
    {
        var table = KvDatabase.NewTable();
        var a = await Kv.PutAsync(table, "a", 1, new KvPutOptions { Ttl = TimeSpan.FromMilliseconds(100) });
        var b = await Kv.PutAsync(table, "b", 2, new KvPutOptions { Ttl = TimeSpan.FromMilliseconds(100) });
        await Kv.PutAsync(table, "keep", 3);
        await db.WaitForServerTimeAsync(b.ExpiresAt!.Value);

        var (expired, _) = await NewService(o => o.TombstoneRetention = TimeSpan.FromHours(1)).RunCycleAsync(CancellationToken.None);

        Assert.True(expired >= 2);
        var changes = await Kv.GetChangesAsync(table, 3);
        Assert.Equal(["a", "b"], changes.Changes.Select(c => c.Key));
        Assert.All(changes.Changes, c => Assert.Equal(KvEntryState.Expired, c.State));
        Assert.Equal([4L, 5L], changes.Changes.Select(c => c.Revision));
        Assert.Equal(a.CreatedRevision, changes.Changes[0].CreatedRevision);
    }

    [Fact]
    public async Task Purge_removes_old_tombstones_records_the_horizon_and_revisions_never_repeat()
    {
        var table = KvDatabase.NewTable();
        await Kv.PutAsync(table, "a", 1);
        await Kv.PutAsync(table, "b", 1);
        var deleted = await Kv.DeleteAsync(table, "a");
        await db.WaitForServerTimeAsync(deleted!.UpdatedAt);

        var (_, purged) = await NewService(o => o.TombstoneRetention = TimeSpan.Zero).RunCycleAsync(CancellationToken.None);

        Assert.True(purged >= 1);
        Assert.Equal(1, await db.RawEntryCountAsync(table));
        var tooOld = await Kv.GetChangesAsync(table, 1);
        var recent = await Kv.GetChangesAsync(table, deleted.Revision);
        Assert.False(tooOld.HistoryAvailable);
        Assert.True(recent.HistoryAvailable);

        var recreated = await Kv.PutAsync(table, "a", 2);
        Assert.Equal(deleted.Revision + 1, recreated.Revision);
        Assert.Equal(recreated.Revision, recreated.CreatedRevision);
    }

    [Fact]
    public async Task Purge_of_every_key_keeps_the_table_revision()
    {
        var table = KvDatabase.NewTable();
        await Kv.PutAsync(table, "a", 1);
        var tombstone = await Kv.DeleteAsync(table, "a");
        await db.WaitForServerTimeAsync(tombstone!.UpdatedAt);
        await NewService(o => o.TombstoneRetention = TimeSpan.Zero).RunCycleAsync(CancellationToken.None);

        Assert.Equal(0, await db.RawEntryCountAsync(table));
        Assert.Equal(2, await Kv.GetTableRevisionAsync(table));
        Assert.Equal(3, (await Kv.PutAsync(table, "a", 1)).Revision);
    }

    [Fact]
    public async Task Only_one_expiry_instance_is_active_and_a_standby_takes_over()
    {
        var lockName = "kvstore.expiry.leader." + Guid.NewGuid().ToString("N")[..8];
        using var first = NewService(o => o.LockName = lockName);
        using var second = NewService(o => o.LockName = lockName);
        var firstActive = Signal(first, true);
        await first.StartAsync(CancellationToken.None);
        await firstActive.WaitAsync(TimeSpan.FromSeconds(20));

        var secondActive = Signal(second, true);
        await second.StartAsync(CancellationToken.None);
        // The standby keeps trying every interval; give it a few cycles of first's work to prove it stays out.
        await CyclesAsync(first, 3).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(first.IsActive);
        Assert.False(second.IsActive);

        await first.StopAsync(CancellationToken.None);
        await secondActive.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(second.IsActive);
        await second.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Expiry_running_alongside_foreground_writes_never_deadlocks()
    {
        using var retries = new RetryRecorder();
        var tables = Enumerable.Range(0, 3).Select(_ => KvDatabase.NewTable()).ToArray();
        await CreateTablesAsync(tables);
        using var service = NewService(o =>
        {
            o.BatchSize = 5;
            o.TombstoneRetention = TimeSpan.Zero;
            o.Interval = TimeSpan.FromMilliseconds(1);
        });
        var cycles = CyclesAsync(service, 30);
        await service.StartAsync(CancellationToken.None);

        var writers = Enumerable.Range(0, 12).Select(async worker =>
        {
            for (var i = 0; i < 40; i++)
            {
                var table = tables[(worker + i) % tables.Length];
                var key = "k" + (i % 10);
                switch (i % 4)
                {
                    case 0: await Kv.PutAsync(table, key, i, new KvPutOptions { Ttl = TimeSpan.FromMilliseconds(5) }); break;
                    case 1: await Kv.DeleteAsync(table, key); break;
                    case 2: await Kv.IncrementAsync(table, "n" + (i % 3), 1); break;
                    default: await Kv.PutAsync(table, key, i); break;
                }
            }
        });
        await Task.WhenAll(writers);
        await cycles.WaitAsync(TimeSpan.FromSeconds(60));
        await service.StopAsync(CancellationToken.None);

        Assert.True(retries.Count("deadlock") == 0, await db.LatestDeadlockAsync());
        foreach (var table in tables)
        {
            var changes = await Kv.GetChangesAsync(table, 0);
            var revs = changes.Changes.Select(c => c.Revision).ToList();
            Assert.Equal(revs.Distinct().Count(), revs.Count);
        }
    }

    /// <summary>
    /// The first writes to a brand-new table race to insert its kv_tables row, and InnoDB can report
    /// that race as a deadlock (retried safely). Creating the tables first keeps the test about what it names.
    /// </summary>
    private async Task CreateTablesAsync(IEnumerable<string> tables)
    {
        foreach (var table in tables)
        {
            await Kv.PutAsync(table, "created", 0);
        }
    }

    private static Task Signal(KvExpiryService service, bool active)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        service.ActiveChanged += a =>
        {
            if (a == active)
            {
                tcs.TrySetResult();
            }
        };
        return tcs.Task;
    }

    private static Task CyclesAsync(KvExpiryService service, int count)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var seen = 0;
        service.CycleCompleted += (_, _) =>
        {
            if (Interlocked.Increment(ref seen) >= count)
            {
                tcs.TrySetResult();
            }
        };
        return tcs.Task;
    }
}
