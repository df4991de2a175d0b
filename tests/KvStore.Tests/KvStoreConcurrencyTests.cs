using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text.Json;

namespace KvStore.Tests;

public sealed class KvStoreConcurrencyTests(KvDatabase db) : IClassFixture<KvDatabase>
{
    private KvStoreClient Kv => db.Client;

    [Fact]
    public async Task Concurrent_increments_from_many_tasks_give_the_exact_total()
    {
        var table = KvDatabase.NewTable();
        const int tasks = 32, perTask = 25;

        var results = await Task.WhenAll(Enumerable.Range(0, tasks).Select(async _ =>
        {
            var seen = new List<long>();
            for (var i = 0; i < perTask; i++)
            {
                seen.Add((await Kv.IncrementAsync(table, "counter", 1)).Value.GetInt64());
            }

            return seen;
        }));

        var final = await Kv.GetAsync(table, "counter");
        Assert.Equal(tasks * perTask, final!.Value.GetInt64());
        // Every caller saw a distinct total: no two increments read the same value.
        Assert.Equal(tasks * perTask, results.SelectMany(r => r).Distinct().Count());
        Assert.Equal(tasks * perTask, await Kv.GetTableRevisionAsync(table));
    }

    [Fact]
    public async Task Concurrent_compare_and_set_loops_lose_no_update()
    {
        var table = KvDatabase.NewTable();
        await Kv.PutAsync(table, "doc", new Counter(0));
        const int tasks = 16, perTask = 10;
        var conflicts = 0;

        await Task.WhenAll(Enumerable.Range(0, tasks).Select(async _ =>
        {
            for (var i = 0; i < perTask; i++)
            {
                while (true)
                {
                    var current = await Kv.GetAsync<Counter>(table, "doc");
                    try
                    {
                        await Kv.PutAsync(table, "doc", new Counter(current!.Value!.N + 1), new KvPutOptions { IfRevision = current.Revision });
                        break;
                    }
                    catch (KvConflictException)
                    {
                        Interlocked.Increment(ref conflicts);
                    }
                }
            }
        }));

        var final = await Kv.GetAsync<Counter>(table, "doc");
        Assert.Equal(tasks * perTask, final!.Value!.N);
        Assert.Equal(1 + (tasks * perTask), final.Revision);
        Assert.True(conflicts > 0, "the test must actually contend");
    }

    [Fact]
    public async Task Concurrent_writers_on_many_tables_get_gapless_unique_revisions()
    {
        var tables = Enumerable.Range(0, 8).Select(_ => KvDatabase.NewTable()).ToArray();
        var revisions = new ConcurrentDictionary<string, ConcurrentBag<long>>();

        await Task.WhenAll(Enumerable.Range(0, 24).Select(async worker =>
        {
            for (var i = 0; i < 20; i++)
            {
                var table = tables[(worker + i) % tables.Length];
                var entry = (i % 3) switch
                {
                    0 => await Kv.PutAsync(table, $"k{i % 5}", worker),
                    1 => await Kv.IncrementAsync(table, "n", 1),
                    _ => (await Kv.CommitAsync(new KvBatch(table).Put($"b{worker}-{i}", JsonDocument.Parse("1").RootElement).Put($"c{worker}-{i}", JsonDocument.Parse("2").RootElement))).Entries[^1],
                };
                revisions.GetOrAdd(table, _ => []).Add(entry.Revision);
            }
        }));

        foreach (var table in tables)
        {
            var max = await Kv.GetTableRevisionAsync(table);
            var seen = revisions[table].ToHashSet();
            Assert.Equal(revisions[table].Count, seen.Count); // unique
            var changes = await Kv.GetChangesAsync(table, 0, 1000);
            Assert.Equal(changes.Changes.Select(c => c.Revision).Order(), changes.Changes.Select(c => c.Revision));
            Assert.Equal(max, changes.Changes.Max(c => c.Revision));
        }
    }

    [Fact]
    public async Task Concurrent_IfAbsent_creates_exactly_one_winner()
    {
        var table = KvDatabase.NewTable();
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 20).Select(async i =>
        {
            try
            {
                await Kv.PutAsync(table, "lock", i, new KvPutOptions { IfAbsent = true });
                return true;
            }
            catch (KvConflictException)
            {
                return false;
            }
        }));

        Assert.Equal(1, outcomes.Count(o => o));
        Assert.Equal(1, await Kv.GetTableRevisionAsync(table));
    }

    [Fact]
    public async Task Foreground_writes_never_deadlock_with_each_other()
    {
        var tables = Enumerable.Range(0, 3).Select(_ => KvDatabase.NewTable()).ToArray();
        foreach (var table in tables)
        {
            // Concurrent first writes to a new table race to create its kv_tables row, which InnoDB may
            // report as a deadlock (retried safely); this test is about writes to existing tables.
            await Kv.PutAsync(table, "created", 0);
        }

        using var retries = new RetryRecorder();

        await Task.WhenAll(Enumerable.Range(0, 16).Select(async worker =>
        {
            for (var i = 0; i < 30; i++)
            {
                var table = tables[i % tables.Length];
                // Batches touch keys in opposite orders from different workers.
                var keys = worker % 2 == 0 ? new[] { "a", "b", "c" } : ["c", "b", "a"];
                var batch = new KvBatch(table);
                foreach (var key in keys)
                {
                    batch.Put(key, JsonDocument.Parse(worker.ToString()).RootElement);
                }

                await Kv.CommitAsync(batch);
                await Kv.IncrementAsync(table, keys[0] + "n", 1);
            }
        }));

        Assert.True(retries.Count("deadlock") == 0, await db.LatestDeadlockAsync());
    }

    private sealed record Counter(int N);
}

/// <summary>Counts kvstore.retries measurements by reason while alive.</summary>
internal sealed class RetryRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, int> _counts = new();

    public RetryRecorder()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "KvStore" && instrument.Name == "kvstore.retries")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "reason")
                {
                    _counts.AddOrUpdate((string)tag.Value!, (int)value, (_, c) => c + (int)value);
                }
            }
        });
        _listener.Start();
    }

    public int Count(string reason) => _counts.TryGetValue(reason, out var c) ? c : 0;

    public int Total => _counts.Values.Sum();

    public void Dispose() => _listener.Dispose();
}
