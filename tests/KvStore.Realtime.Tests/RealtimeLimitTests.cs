using Microsoft.AspNetCore.SignalR.Client;

namespace KvStore.Realtime.Tests;

public sealed class RealtimeLimitTests(RealtimeFixture fx) : IClassFixture<RealtimeFixture>
{
    [Fact]
    public async Task Connections_beyond_the_cap_are_closed_with_a_reason()
    {
        // A second node on the fixture's database: without its own publisher (the fixture's reader holds the stream).
        await using var host = await RealtimeHost.StartAsync(fx.ConnectionString, o =>
        {
            o.MaxConnections = 1;
            o.RunPublisher = false;
        }, waitForStream: false);
        await using var first = await KvTestClient.ConnectAsync(host.BaseUrl);
        // A completed invocation means the server has finished connecting the first client.
        var result = await first.SubscribeAsync("t-" + Guid.NewGuid().ToString("N")[..8]);
        Assert.Equal("snapshot", result.Mode);
        Assert.Contains("connection_limit", await TestConnections.RefusedAsync(host.BaseUrl));
        // The first connection is unaffected.
        Assert.Equal(HubConnectionState.Connected, first.Connection.State);
    }

    [Fact]
    public async Task A_message_over_the_size_limit_closes_the_connection_and_writes_nothing()
    {
        await using var host = await RealtimeHost.StartAsync(fx.ConnectionString, o => o.MaxMessageBytes = 4096, waitForStream: false);
        await using var client = await KvTestClient.ConnectAsync(host.BaseUrl);
        var closed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Connection.Closed += ex =>
        {
            closed.TrySetResult(ex);
            return Task.CompletedTask;
        };
        var table = "t-" + Guid.NewGuid().ToString("N")[..8];

        var put = client.Connection.InvokeAsync<KvEntryDto>("Put", table, "k", JsonValues.Of("\"" + new string('x', 10_000) + "\""), null);
        await Assert.ThrowsAnyAsync<Exception>(() => put);
        await closed.Task.WaitAsync(TimeSpan.FromSeconds(30));

        var kv = (KvStoreClient)fx.Host.Services.GetService(typeof(KvStoreClient))!;
        Assert.Equal(0, await kv.GetTableRevisionAsync(table));
    }
}
