using KvStore.Realtime.Snapshots;
using KvStore.TestInfrastructure;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KvStore.Realtime.Tests;

/// <summary>A host with room for hundreds of subscribers per table, frames limited only by delivery, and its own slow-consumer log.</summary>
public sealed class FanOutFixture : TestDatabase
{
    public const int SubscribeReads = 2;

    public RealtimeHost Host { get; private set; } = null!;

    internal SlowConsumerLog SlowConsumers { get; } = new();

    public KvStoreClient Kv => (KvStoreClient)Host.Services.GetService(typeof(KvStoreClient))!;

    internal SubscribeReader Reader => Host.Services.GetRequiredService<SubscribeReader>();

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await KvSchema.MigrateAsync(ConnectionString);
        Host = await RealtimeHost.StartAsync(
            ConnectionString,
            o =>
            {
                o.MaxSubscribersPerTable = 1000;
                o.MaxFramesPerSecondPerTable = 1000;
                o.MaxQueuedMessagesPerConnection = 10_000;
                o.MaxConcurrentSubscribeReads = SubscribeReads;
            },
            services: s => s.AddSingleton<ILoggerProvider>(SlowConsumers));
    }

    public override async Task DisposeAsync()
    {
        await Host.DisposeAsync();
        await base.DisposeAsync();
    }
}

public sealed class RealtimeFanOutTests(FanOutFixture fx) : IClassFixture<FanOutFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static string NewTable(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task Every_subscriber_gets_every_change_in_revision_order_when_a_frame_spans_many_slices()
    {
        var table = NewTable("order");
        var clients = await ConnectAsync(3 * Hubs.KvHubLifetimeManager.FanOutSlice - 50);
        try
        {
            foreach (var client in clients)
            {
                await client.SubscribeAsync(table);
            }

            KvEntry last = null!;
            for (var i = 0; i < 300; i++)
            {
                last = await fx.Kv.PutAsync(table, "k" + (i % 20), i);
            }

            var expected = (await fx.Kv.ListAsync(table, limit: 100)).Entries.ToDictionary(e => e.Key, e => e.Value.GetRawText(), StringComparer.Ordinal);
            foreach (var client in clients)
            {
                await client.WaitForRevisionAsync(last.Revision, Timeout);
                Assert.Empty(client.Resumes);
                var frames = client.Frames.Where(f => f.Table == table).ToList();
                // In order, and each frame continues where the one before ended (nothing skipped, nothing twice).
                Assert.All(frames.Zip(frames.Skip(1)), pair => Assert.Equal(pair.First.Revision, pair.Second.After));
                Assert.Equal(expected, client.LiveValues());
            }
        }
        finally
        {
            await DisposeAllAsync(clients);
        }
    }

    [Fact]
    public async Task Normal_disconnects_during_fan_out_are_not_slow_consumers()
    {
        var table = NewTable("leave");
        var clients = await ConnectAsync(200);
        using var stop = new CancellationTokenSource();
        Task? writer = null;
        try
        {
            foreach (var client in clients)
            {
                await client.SubscribeAsync(table);
            }

            var writes = 0;
            writer = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    await fx.Kv.PutAsync(table, "k" + (writes++ % 10), writes);
                }
            });
            await Eventually.UntilAsync(() => Volatile.Read(ref writes) >= 20, () => "the writer did not start");

            // Every client leaves while frames keep going out to the table's group.
            await DisposeAllAsync(clients);
            var after = Volatile.Read(ref writes);
            await Eventually.UntilAsync(() => Volatile.Read(ref writes) >= after + 20, () => "the writer stopped");
        }
        finally
        {
            await stop.CancelAsync();
            if (writer is not null)
            {
                await writer;
            }

            await DisposeAllAsync(clients);
        }

        Assert.Empty(fx.SlowConsumers.Connections);
    }

    [Fact]
    public async Task Subscribes_of_a_busy_table_are_answered_from_memory_exactly_as_the_database_answers()
    {
        var table = NewTable("cache");
        for (var i = 0; i < 10; i++)
        {
            await fx.Kv.PutAsync(table, "k" + i, new { i });
        }

        await fx.Kv.DeleteAsync(table, "k3");
        await fx.Kv.PutAsync(table, "ttl", 1, new KvPutOptions { Ttl = TimeSpan.FromHours(1) });
        await fx.Kv.CommitAsync(new KvBatch(table).Put("b1", JsonValues.Of("[1]")).Put("b2", JsonValues.Of("{\"x\":null}")));

        var clients = await ConnectAsync(HotTableCache.MinSubscribers + 1);
        try
        {
            foreach (var client in clients)
            {
                await client.SubscribeAsync(table);
            }

            var seeded = clients[^1].Revision;
            // Changes after the cache was seeded reach it as published frames.
            await fx.Kv.PutAsync(table, "k0", "new");
            await fx.Kv.DeleteAsync(table, "k1");
            await fx.Kv.PutAsync(table, "late", true);
            var last = await fx.Kv.IncrementAsync(table, "n", 5);
            foreach (var client in clients)
            {
                await client.WaitForRevisionAsync(last.Revision, Timeout);
            }

            var probe = clients[0].Connection;
            var fromMemory = fx.Reader.MemoryAnswers;
            for (var from = seeded; from <= last.Revision; from++)
            {
                var cached = await probe.InvokeAsync<SubscribeResult>("Subscribe", table, from);
                var database = await fx.Kv.GetChangesAsync(table, from, 500);
                Assert.Equal(("changes", database.Revision, true), (cached.Mode, cached.Revision, cached.Complete));
                AssertSameEntries(database.Changes, cached.Entries);
            }

            var snapshot = await probe.InvokeAsync<SubscribeResult>("Subscribe", table, null);
            var page = await fx.Kv.ListAsync(table, limit: 500);
            Assert.Equal(("snapshot", page.Revision, true), (snapshot.Mode, snapshot.Revision, snapshot.Complete));
            AssertSameEntries(page.Entries, snapshot.Entries);
            Assert.Equal(fromMemory + last.Revision - seeded + 2, fx.Reader.MemoryAnswers);
        }
        finally
        {
            await DisposeAllAsync(clients);
        }
    }

    [Fact]
    public async Task A_burst_of_resumes_reads_the_database_a_bounded_number_of_times()
    {
        var table = NewTable("storm");
        for (var i = 0; i < 10; i++)
        {
            await fx.Kv.PutAsync(table, "k" + i, i);
        }

        var held = (await fx.Kv.PutAsync(table, "k0", "held")).Revision;
        await fx.Kv.DeleteAsync(table, "k1");
        var last = await fx.Kv.PutAsync(table, "k2", "last");
        var clients = await ConnectAsync(60);
        try
        {
            var reads = fx.Reader.DatabaseReads;
            var results = await Task.WhenAll(clients.Select(c => c.SubscribeAsync(table, resumeFrom: held)));

            Assert.All(results, r => Assert.Equal(("changes", last.Revision), (r.Mode, r.Revision)));
            Assert.All(results, r => Assert.Equal(["k1", "k2"], r.Entries.Select(e => e.Key)));
            // The first reads (until the table has enough subscribers for a cache, and those running at
            // once) go to the database; the cache answers the rest.
            Assert.InRange(fx.Reader.DatabaseReads - reads, 1, HotTableCache.MinSubscribers + FanOutFixture.SubscribeReads);
        }
        finally
        {
            await DisposeAllAsync(clients);
        }
    }

    private static void AssertSameEntries(IReadOnlyList<KvEntry> expected, IReadOnlyList<KvEntryDto> actual) =>
        Assert.Equal(
            expected.Select(KvEntryDto.From).Select(Comparable).ToList(),
            actual.Select(Comparable).ToList());

    private static string Comparable(KvEntryDto e) =>
        $"{e.Key} {e.Op} {e.Value?.GetRawText()} {e.Revision} {e.CreatedRevision} {e.CreatedAt:O} {e.UpdatedAt:O} {e.ExpiresAt:O}";

    private async Task<List<KvTestClient>> ConnectAsync(int count)
    {
        var clients = new List<KvTestClient>(count);
        for (var i = 0; i < count; i++)
        {
            clients.Add(await KvTestClient.ConnectAsync(fx.Host.BaseUrl));
        }

        return clients;
    }

    private static async Task DisposeAllAsync(List<KvTestClient> clients)
    {
        await Task.WhenAll(clients.Select(c => c.DisposeAsync().AsTask()));
        clients.Clear();
    }
}
