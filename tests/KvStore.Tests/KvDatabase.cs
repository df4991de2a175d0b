using KvStore.TestInfrastructure;
using MySqlConnector;

namespace KvStore.Tests;

/// <summary>A fresh database with the KvStore schema applied and a client on it (one per test class).</summary>
public sealed class KvDatabase : TestDatabase
{
    private readonly List<KvStoreClient> _clients = [];

    public KvStoreClient Client { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await KvSchema.MigrateAsync(ConnectionString);
        Client = CreateClient();
    }

    public KvStoreClient CreateClient(Action<KvStoreOptions>? configure = null)
    {
        var options = new KvStoreOptions { ConnectionString = ConnectionString };
        configure?.Invoke(options);
        var client = new KvStoreClient(options);
        _clients.Add(client);
        return client;
    }

    /// <summary>A table name no other test uses.</summary>
    public static string NewTable(string prefix = "t") => prefix + "-" + Guid.NewGuid().ToString("N")[..10];

    /// <summary>Raw row count of a table in kv_entries (tombstones included), read past KvStore.</summary>
    public async Task<long> RawEntryCountAsync(string table)
    {
        await using var connection = await OpenAsync();
        await using var command = new MySqlCommand("SELECT COUNT(*) FROM kv_entries WHERE tbl = @t", connection);
        command.Parameters.AddWithValue("@t", table);
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    /// <summary>Raw kv_tables revision (null when the row does not exist), read past KvStore.</summary>
    public async Task<long?> RawTableRevisionAsync(string table)
    {
        await using var connection = await OpenAsync();
        await using var command = new MySqlCommand("SELECT rev FROM kv_tables WHERE name = @t", connection);
        command.Parameters.AddWithValue("@t", table);
        var value = await command.ExecuteScalarAsync();
        return value is null or DBNull ? null : Convert.ToInt64(value);
    }

    /// <summary>The "LATEST DETECTED DEADLOCK" section of SHOW ENGINE INNODB STATUS, for failure messages.</summary>
    public async Task<string> LatestDeadlockAsync()
    {
        await using var connection = await OpenAsync();
        await using var command = new MySqlCommand("SHOW ENGINE INNODB STATUS", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var status = await reader.ReadAsync() ? reader.GetString(2) : string.Empty;
        var start = status.IndexOf("LATEST DETECTED DEADLOCK", StringComparison.Ordinal);
        var end = status.IndexOf("TRANSACTIONS\n", start < 0 ? 0 : start, StringComparison.Ordinal);
        return start < 0 ? "(no deadlock recorded)" : status[start..(end < 0 ? Math.Min(status.Length, start + 4000) : end)];
    }

    /// <summary>Waits (with a deadline) until the database server's clock has passed <paramref name="instant"/>.</summary>
    public async Task WaitForServerTimeAsync(DateTimeOffset instant, TimeSpan? timeout = null)
    {
        var deadline = DateTimeOffset.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        await using var connection = await OpenAsync();
        while (true)
        {
            await using var command = new MySqlCommand("SELECT UTC_TIMESTAMP(6)", connection);
            var now = new DateTimeOffset(DateTime.SpecifyKind((DateTime)(await command.ExecuteScalarAsync())!, DateTimeKind.Utc));
            if (now > instant)
            {
                return;
            }

            if (DateTimeOffset.UtcNow > deadline)
            {
                throw new TimeoutException($"Server time did not pass {instant:O}.");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(Math.Clamp((instant - now).TotalMilliseconds, 5, 200)));
        }
    }

    public override async Task DisposeAsync()
    {
        foreach (var client in _clients)
        {
            await client.DisposeAsync();
        }

        await base.DisposeAsync();
    }
}
