using Microsoft.AspNetCore.SignalR.Client;

namespace KvStore.Realtime.Tests;

/// <summary>Resume across a server restart: a new host process on the same port, the same database.</summary>
public sealed class RealtimeResumeTests(RealtimeFixture fx) : IClassFixture<RealtimeFixture>
{
    [Fact]
    public async Task After_a_server_restart_the_client_resumes_and_gets_the_changes_made_while_it_was_away()
    {
        var table = "restart-" + Guid.NewGuid().ToString("N")[..8];
        var kv = (KvStoreClient)fx.Host.Services.GetService(typeof(KvStoreClient))!;
        await kv.PutAsync(table, "a", 1);
        await using var client = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
        await client.SubscribeAsync(table);
        var held = client.Revision;
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Connection.Closed += _ =>
        {
            closed.TrySetResult();
            return Task.CompletedTask;
        };

        await fx.Host.StopAsync();
        await closed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await using (var writer = new KvStoreClient(new KvStoreOptions { ConnectionString = fx.ConnectionString }))
        {
            await writer.PutAsync(table, "a", 2);       // while no server runs
            await writer.PutAsync(table, "b", 3);
        }

        await fx.Host.StartAsync();
        await client.Connection.StartAsync();
        var result = await client.SubscribeAsync(table, resumeFrom: held);
        var live = await ((KvStoreClient)fx.Host.Services.GetService(typeof(KvStoreClient))!).PutAsync(table, "c", 4);
        await client.WaitForRevisionAsync(live.Revision);

        Assert.Equal("changes", result.Mode);
        Assert.Equal(["a", "b"], result.Entries.Select(e => e.Key));
        Assert.Equal(new Dictionary<string, string> { ["a"] = "2", ["b"] = "3", ["c"] = "4" }, client.LiveValues());
    }
}
