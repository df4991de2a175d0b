using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using MySqlConnector;

namespace KvStore.Tests;

public sealed class KvResilienceTests(KvDatabase db) : IClassFixture<KvDatabase>
{
    [Fact]
    public async Task Unreachable_server_is_retried_then_reported_unavailable_with_nothing_committed()
    {
        using var retries = new RetryRecorder();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens there now

        await using var client = new KvStoreClient(new KvStoreOptions
        {
            ConnectionString = $"Server=127.0.0.1;Port={port};User ID=x;Password=y;Connection Timeout=2",
            MaxRetryAttempts = 2,
            RetryBaseDelay = TimeSpan.FromMilliseconds(1),
        });

        var ex = await Assert.ThrowsAsync<KvStoreException>(() => client.PutAsync("t", "k", 1));

        Assert.Equal(KvErrorCodes.Unavailable, ex.Code);
        Assert.Contains("nothing was committed", ex.Message);
        Assert.Equal(2, retries.Count("connect"));
    }

    [Fact]
    public async Task Connection_killed_before_commit_is_retried_and_the_write_lands_once()
    {
        using var retries = new RetryRecorder();
        var client = db.CreateClient(o => o.MaxRetryAttempts = 5);
        var table = KvDatabase.NewTable();
        await client.PutAsync(table, "a", 1);

        // Hold the table's revision row: the increment's first round trip (lock + read) blocks on it.
        await using var holder = await db.HoldTableRowAsync(table);

        var increment = client.IncrementAsync(table, "a", 1);
        var victim = (await db.WaitForStatementsAsync("INSERT INTO kv_tables%"))[0];
        await db.Server.ExecuteAsync($"KILL CONNECTION {victim}");
        await using (var release = new MySqlCommand("ROLLBACK", holder))
        {
            await release.ExecuteNonQueryAsync();
        }

        var entry = await increment;

        Assert.Equal(2, entry.Value.GetInt64());
        Assert.Equal(1, retries.Count("connect"));
        Assert.Equal(2, await client.GetTableRevisionAsync(table));
    }

    [Fact]
    public async Task Connection_killed_during_commit_reports_outcome_unknown_and_is_not_retried()
    {
        using var retries = new RetryRecorder();
        var client = db.CreateClient(o => o.MaxRetryAttempts = 5);
        var table = KvDatabase.NewTable();
        await client.PutAsync(table, "a", 1);

        // Hold the table's revision row so the put's one-round-trip commit blocks on it.
        await using var holder = await db.HoldTableRowAsync(table);

        var put = client.PutAsync(table, "a", 2);
        var victim = (await db.WaitForStatementsAsync("INSERT INTO kv_tables%"))[0];
        await db.Server.ExecuteAsync($"KILL CONNECTION {victim}");

        var ex = await Assert.ThrowsAsync<KvStoreException>(() => put);
        await using (var rollback = new MySqlCommand("ROLLBACK", holder))
        {
            await rollback.ExecuteNonQueryAsync();
        }

        Assert.Equal(KvErrorCodes.OutcomeUnknown, ex.Code);
        Assert.Contains("may or may not", ex.Message);
        Assert.Equal(0, retries.Total);
        // Here the server rolled back (the kill came before COMMIT), which the caller finds out by reading.
        Assert.Equal(1, (await client.GetAsync(table, "a"))!.Value.GetInt32());
    }

    [Fact]
    public async Task AddKvStore_registers_the_client_and_validates_options_on_start()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddKvStore(db.ConnectionString, o => o.MaxValueBytes = 2048);
        await using var provider = services.BuildServiceProvider();

        var kv = provider.GetRequiredService<IKvStore>();
        Assert.Same(provider.GetRequiredService<KvStoreClient>(), kv);
        Assert.Equal(2048, provider.GetRequiredService<KvStoreClient>().Options.MaxValueBytes);
        Assert.Equal(1, (await kv.PutAsync(KvDatabase.NewTable(), "k", 1)).Revision);

        var bad = Host.CreateApplicationBuilder();
        bad.Services.AddKvStore(db.ConnectionString, o => o.MaxValueBytes = 0);
        using var host = bad.Build();
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("MaxValueBytes", error.Message);
    }

    /// <summary>Opens a transaction that holds the table's revision row, so KvStore writes to it block.</summary>
}
