using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using KvStore.Cdc;
using KvStore.Realtime.Hubs;
using KvStore.Realtime.Publishing;
using KvStore.TestInfrastructure;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KvStore.Realtime.Tests;

/// <summary>
/// The scale-out deployment: two hub nodes (RunPublisher = false) on real Kestrel ports and one
/// publisher-only process (a generic host), all connected through SignalR's Redis backplane to a real
/// redis-server, sharing one database.
/// </summary>
public sealed class BackplaneFixture : TestDatabase
{
    public RedisServer Redis { get; private set; } = null!;

    public PublisherHost Publisher { get; private set; } = null!;

    public RealtimeHost NodeA { get; private set; } = null!;

    public RealtimeHost NodeB { get; private set; } = null!;

    public KvStoreClient Kv => Publisher.Services.GetRequiredService<KvStoreClient>();

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await KvSchema.MigrateAsync(ConnectionString);
        Redis = await RedisServer.StartAsync("backplane");
        // Frames are made in the publisher: no merging, so a stalled client's outbox fills fast.
        Publisher = await PublisherHost.StartAsync(ConnectionString, Redis.Configuration, o => o.MaxFramesPerSecondPerTable = 10_000);
        NodeA = await StartNodeAsync();
        NodeB = await StartNodeAsync();
    }

    public Task<RealtimeHost> StartNodeAsync(Action<KvRealtimeOptions>? configure = null, Action<IServiceCollection>? services = null) =>
        RealtimeHost.StartAsync(
            ConnectionString,
            o =>
            {
                o.RunPublisher = false;
                o.MaxQueuedMessagesPerConnection = 32;
                configure?.Invoke(o);
            },
            services: s =>
            {
                s.AddKvRedisBackplane(Redis.Configuration, o => o.Configuration.ChannelPrefix = StackExchange.Redis.RedisChannel.Literal("kvtest"));
                services?.Invoke(s);
            },
            changeStream: false);

    public override async Task DisposeAsync()
    {
        await NodeA.DisposeAsync();
        await NodeB.DisposeAsync();
        await Publisher.DisposeAsync();
        await Redis.DisposeAsync();
        await base.DisposeAsync();
    }
}

public sealed class RealtimeBackplaneTests(BackplaneFixture fx) : IClassFixture<BackplaneFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Writes_reach_subscribers_on_both_hub_nodes_through_the_publisher_process()
    {
        Assert.True(fx.Publisher.Services.GetRequiredService<KvChangePublisher>().Enabled);
        Assert.False(fx.NodeA.Services.GetRequiredService<KvChangePublisher>().Enabled);
        Assert.Null(fx.NodeA.Services.GetService<IKvChangeSource>());

        var table = NewTable();
        var seed = await fx.Kv.PutAsync(table, "seed", 1);
        await using var a = await KvTestClient.ConnectAsync(fx.NodeA.BaseUrl);
        await using var b = await KvTestClient.ConnectAsync(fx.NodeB.BaseUrl);
        var snapshotA = await a.SubscribeAsync(table);
        var snapshotB = await b.SubscribeAsync(table);
        Assert.Equal(seed.Revision, snapshotA.Revision);
        Assert.Equal(seed.Revision, snapshotB.Revision);

        // One write through the library, one through node B's HTTP API.
        await fx.Kv.PutAsync(table, "lib", "from the library");
        using var http = new HttpClient { BaseAddress = new Uri(fx.NodeB.BaseUrl) };
        var response = await http.PutAsJsonAsync($"/v1/tables/{table}/entries/http", new { value = "from node B" });
        response.EnsureSuccessStatusCode();
        var written = (await response.Content.ReadFromJsonAsync<KvEntryDto>())!;

        await a.WaitForRevisionAsync(written.Revision, Timeout);
        await b.WaitForRevisionAsync(written.Revision, Timeout);
        var expected = new Dictionary<string, string> { ["seed"] = "1", ["lib"] = "\"from the library\"", ["http"] = "\"from node B\"" };
        Assert.Equal(expected, a.LiveValues());
        Assert.Equal(expected, b.LiveValues());
    }

    [Fact]
    public async Task Presence_stays_per_node_and_progress_from_the_publisher_reaches_every_node()
    {
        var table = NewTable();
        await using var a1 = await KvTestClient.ConnectAsync(fx.NodeA.BaseUrl);
        await using var a2 = await KvTestClient.ConnectAsync(fx.NodeA.BaseUrl);
        await using var b = await KvTestClient.ConnectAsync(fx.NodeB.BaseUrl);
        var presenceA = Next<PresenceMessage>(a1, "presence", p => p.Table == table && p.Subscribers == 2);
        var presenceB = Next<PresenceMessage>(b, "presence", p => p.Table == table && p.Subscribers == 1);
        await a1.SubscribeAsync(table);
        await a2.SubscribeAsync(table);
        await b.SubscribeAsync(table);
        await presenceA;
        await presenceB;

        // The publisher has no subscriber of its own: progress goes to the tables it published to recently.
        var progressA = Next<ProgressMessage>(a2, "progress", p => p.Table == table);
        var progressB = Next<ProgressMessage>(b, "progress", p => p.Table == table);
        var entry = await fx.Kv.PutAsync(table, "k", 1);
        Assert.True((await progressA).Revision >= entry.Revision);
        Assert.True((await progressB).Revision >= entry.Revision);
    }

    [Fact]
    public async Task Subscribers_joining_either_node_during_writes_end_with_the_database_state()
    {
        var table = NewTable();
        var writes = 200;
        var writer = Task.Run(async () =>
        {
            KvEntry last = null!;
            for (var i = 0; i < writes; i++)
            {
                // One key per write: frame merging keeps every change, so any change lost between a
                // snapshot and the node's Redis subscription would leave a key missing.
                last = await fx.Kv.PutAsync(table, "k" + i, i);
            }

            return last;
        });

        var clients = new List<KvTestClient>();
        try
        {
            // Subscribe on alternating nodes while the writer runs (at least two on each node).
            for (var i = 0; !writer.IsCompleted || i < 4; i++)
            {
                var client = await KvTestClient.ConnectAsync(i % 2 == 0 ? fx.NodeA.BaseUrl : fx.NodeB.BaseUrl);
                clients.Add(client);
                await client.SubscribeAsync(table);
            }

            var last = await writer;
            var page = await fx.Kv.ListAsync(table, limit: 500);
            Assert.Equal(writes, page.Entries.Count);
            var expected = page.Entries.ToDictionary(e => e.Key, e => e.Value.GetRawText(), StringComparer.Ordinal);
            foreach (var client in clients)
            {
                await client.WaitForRevisionAsync(last.Revision, Timeout);
                Assert.Equal(expected, client.LiveValues());
            }
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_stalled_client_on_a_backplane_node_is_closed_as_a_slow_consumer_and_the_others_keep_up()
    {
        var table = NewTable();
        var slowConsumers = new SlowConsumerLog();
        await using var node = await fx.StartNodeAsync(services: s => s.AddSingleton<ILoggerProvider>(slowConsumers));
        Assert.True(node.Services.GetRequiredService<KvHubLifetimeManager>().HasBackplane);
        await using var healthy = await KvTestClient.ConnectAsync(node.BaseUrl);
        await using var elsewhere = await KvTestClient.ConnectAsync(fx.NodeB.BaseUrl);
        await healthy.SubscribeAsync(table);
        await elsewhere.SubscribeAsync(table);
        using var stalled = await TestConnections.StalledSubscriberAsync(node.Port, table);

        var big = new string('x', 100_000);
        KvEntry last = null!;
        for (var i = 0; i < 1000 && !slowConsumers.Closed.IsCompleted; i++)
        {
            last = await fx.Kv.PutAsync(table, "k" + (i % 10), big + i);
        }

        var closedId = await slowConsumers.Closed.WaitAsync(Timeout);
        Assert.NotEqual(healthy.Connection.ConnectionId, closedId);
        await healthy.WaitForRevisionAsync(last.Revision, TimeSpan.FromSeconds(60));
        await elsewhere.WaitForRevisionAsync(last.Revision, TimeSpan.FromSeconds(60));
        Assert.Equal(HubConnectionState.Connected, healthy.Connection.State);
        var lastKey = "k" + ((last.Revision - 1) % 10);
        Assert.Equal(big + (last.Revision - 1), healthy.LiveValues()[lastKey].Trim('"'));
        Assert.Equal(big + (last.Revision - 1), elsewhere.LiveValues()[lastKey].Trim('"'));
    }

    [Fact]
    public async Task Resync_from_a_publisher_process_reaches_the_clients_of_every_node()
    {
        var table = NewTable();
        var entry = await fx.Kv.PutAsync(table, "k", 1);
        await using var a = await KvTestClient.ConnectAsync(fx.NodeA.BaseUrl);
        await using var b = await KvTestClient.ConnectAsync(fx.NodeB.BaseUrl);
        await a.SubscribeAsync(table);
        await b.SubscribeAsync(table);
        var resyncA = Next<ResyncMessage>(a, "resync", _ => true);
        var resyncB = Next<ResyncMessage>(b, "resync", _ => true);

        // A second publisher whose stream lost its position: it knows no subscriber, so it tells everyone.
        await using var lost = await PublisherHost.StartAsync(fx.ConnectionString, fx.Redis.Configuration, source: new LostPositionSource());
        Assert.Equal(KvSubscriptions.AllTables, (await resyncA).Table);
        Assert.Equal(KvSubscriptions.AllTables, (await resyncB).Table);

        // What the client does on resync: resume from the revision it holds.
        await Eventually.UntilAsync(() => b.LastResume is not null, () => "the client resumed on resync", Timeout);
        var resumed = await b.LastResume!.WaitAsync(Timeout);
        Assert.Null(b.ResumeError);
        Assert.Contains("resync", b.Resumes);
        Assert.Equal("changes", resumed!.Mode);
        Assert.Equal(entry.Revision, resumed.Revision);
    }

    [Fact]
    public async Task The_connection_cap_holds_on_a_backplane_node()
    {
        await using var node = await fx.StartNodeAsync(o => o.MaxConnections = 1);
        await using var first = await KvTestClient.ConnectAsync(node.BaseUrl);
        var table = NewTable();
        // A completed invocation means the server has finished connecting the first client.
        await first.SubscribeAsync(table);
        Assert.Contains("connection_limit", await TestConnections.RefusedAsync(node.BaseUrl));

        // The first connection still gets changes from the publisher process.
        var entry = await fx.Kv.PutAsync(table, "k", 1);
        await first.WaitForRevisionAsync(entry.Revision, Timeout);
    }

    private static string NewTable() => "bp-" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>The next <paramref name="method"/> message matching <paramref name="match"/>, within the timeout.</summary>
    private static async Task<T> Next<T>(KvTestClient client, string method, Func<T, bool> match)
    {
        var signal = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var handler = client.Connection.On<T>(method, m =>
        {
            if (match(m))
            {
                signal.TrySetResult(m);
            }
        });
        return await signal.Task.WaitAsync(Timeout);
    }

    /// <summary>A change source whose binlog position is gone: the first read fails with resync required, then it idles.</summary>
    private sealed class LostPositionSource : IKvChangeSource
    {
        private int _reads;

        public KvChangeSourceStatus Status { get; } = new("streaming", null, null);

        public async IAsyncEnumerable<KvChangeBatch> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            if (Interlocked.Increment(ref _reads) == 1)
            {
                throw new KvResyncRequiredException("test: the binlog position was purged");
            }

            await Task.Delay(System.Threading.Timeout.Infinite, cancellationToken);
            yield break;
        }

        public ValueTask AcknowledgeAsync(KvChangeBatch batch, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public ValueTask ResetToCurrentPositionAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;
    }
}
