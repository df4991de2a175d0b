using System.Diagnostics.Metrics;
using System.Net.WebSockets;
using System.Text;
using KvStore.TestInfrastructure;

namespace KvStore.Realtime.Tests;

public sealed class RealtimeSlowConsumerTests
{
    [Fact]
    public async Task A_client_that_stops_reading_is_disconnected_as_a_slow_consumer_and_others_keep_up()
    {
        var db = new TestDatabase();
        await db.InitializeAsync();
        try
        {
            await KvSchema.MigrateAsync(db.ConnectionString);
            await using var host = await RealtimeHost.StartAsync(db.ConnectionString, o =>
            {
                // Room for a healthy client on a loaded machine; a client that never reads overflows it anyway.
                o.MaxQueuedMessagesPerConnection = 32;
                o.MaxFramesPerSecondPerTable = 10_000;
            });
            var disconnects = 0L;
            using var listener = new MeterListener();
            listener.InstrumentPublished = (i, l) =>
            {
                if (i.Name == "kvstore.realtime.slow_consumer_disconnects")
                {
                    l.EnableMeasurementEvents(i);
                }
            };
            listener.SetMeasurementEventCallback<long>((_, v, _, _) => Interlocked.Add(ref disconnects, v));
            listener.Start();

            var table = "slow-" + Guid.NewGuid().ToString("N")[..8];
            using var stalled = await StalledSubscriberAsync(host, table);
            await using var healthy = await KvTestClient.ConnectAsync(host.BaseUrl);
            await healthy.SubscribeAsync(table);

            var kv = (KvStoreClient)host.Services.GetService(typeof(KvStoreClient))!;
            var big = new string('x', 100_000);
            KvEntry last = null!;
            for (var i = 0; i < 1000 && Interlocked.Read(ref disconnects) == 0; i++)
            {
                last = await kv.PutAsync(table, "k" + (i % 10), big + i);
            }

            await healthy.WaitForRevisionAsync(last.Revision, TimeSpan.FromSeconds(60));
            Assert.True(Interlocked.Read(ref disconnects) >= 1, "the stalled client was never disconnected");
            Assert.Equal(big + (last.Revision - 1), healthy.LiveValues()["k" + ((last.Revision - 1) % 10)].Trim('"'));
        }
        finally
        {
            await db.DisposeAsync();
        }
    }

    /// <summary>A raw WebSocket SignalR client that subscribes and then never reads again.</summary>
    private static async Task<ClientWebSocket> StalledSubscriberAsync(RealtimeHost host, string table)
    {
        var socket = new ClientWebSocket();
        socket.Options.SetBuffer(1024, 1024);
        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{host.Port}/hubs/kv"), CancellationToken.None);
        await SendAsync(socket, """{"protocol":"json","version":1}""");
        await SendAsync(socket, $$"""{"type":1,"invocationId":"1","target":"Subscribe","arguments":["{{table}}",null]}""");
        // Read the handshake answer and the Subscribe completion, then stop reading for good.
        var buffer = new byte[64 * 1024];
        var text = new StringBuilder();
        while (!text.ToString().Contains("\"invocationId\":\"1\"", StringComparison.Ordinal))
        {
            var read = await socket.ReceiveAsync(buffer, new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
            text.Append(Encoding.UTF8.GetString(buffer, 0, read.Count));
        }

        return socket;
    }

    private static Task SendAsync(ClientWebSocket socket, string json) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(json + "\u001e"), WebSocketMessageType.Text, true, CancellationToken.None);
}
