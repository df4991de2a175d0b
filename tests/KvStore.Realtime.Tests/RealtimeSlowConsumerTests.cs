using KvStore.TestInfrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KvStore.Realtime.Tests;

public sealed class RealtimeSlowConsumerTests
{
    [Fact]
    public Task A_client_that_stops_reading_is_disconnected_as_a_slow_consumer_and_others_keep_up() =>
        // Room for a healthy client on a loaded machine; a client that never reads overflows it anyway.
        StalledClientIsClosedAsync(o => o.MaxQueuedMessagesPerConnection = 32);

    [Fact]
    public Task The_outbox_is_bounded_by_bytes_too() =>
        // Few messages, but large ones: the count limit is never reached, the byte limit is.
        StalledClientIsClosedAsync(o =>
        {
            o.MaxQueuedMessagesPerConnection = 100_000;
            o.MaxQueuedBytesPerConnection = 4 * 1024 * 1024;
        });

    private static async Task StalledClientIsClosedAsync(Action<KvRealtimeOptions> limits)
    {
        var db = new TestDatabase();
        await db.InitializeAsync();
        try
        {
            await KvSchema.MigrateAsync(db.ConnectionString);
            // This host's own log, not the process-wide meter that tests running in parallel also count.
            var slowConsumers = new SlowConsumerLog();
            await using var host = await RealtimeHost.StartAsync(
                db.ConnectionString,
                o =>
                {
                    limits(o);
                    o.MaxFramesPerSecondPerTable = 10_000;
                },
                services: s => s.AddSingleton<ILoggerProvider>(slowConsumers));

            var table = "slow-" + Guid.NewGuid().ToString("N")[..8];
            using var stalled = await TestConnections.StalledSubscriberAsync(host.Port, table);
            await using var healthy = await KvTestClient.ConnectAsync(host.BaseUrl);
            await healthy.SubscribeAsync(table);

            var kv = (KvStoreClient)host.Services.GetService(typeof(KvStoreClient))!;
            var big = new string('x', 100_000);
            KvEntry last = null!;
            for (var i = 0; i < 1000 && !slowConsumers.Closed.IsCompleted; i++)
            {
                last = await kv.PutAsync(table, "k" + (i % 10), big + i);
            }

            await healthy.WaitForRevisionAsync(last.Revision, TimeSpan.FromSeconds(60));
            Assert.True(slowConsumers.Closed.IsCompleted, "the stalled client was never disconnected");
            Assert.NotEqual(healthy.Connection.ConnectionId, await slowConsumers.Closed);
            Assert.Single(slowConsumers.Connections);
            Assert.Equal(big + (last.Revision - 1), healthy.LiveValues()["k" + ((last.Revision - 1) % 10)].Trim('"'));
        }
        finally
        {
            await db.DisposeAsync();
        }
    }
}
