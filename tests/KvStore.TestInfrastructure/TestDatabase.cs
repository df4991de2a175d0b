using MySqlConnector;
using Xunit;

namespace KvStore.TestInfrastructure;

/// <summary>
/// A fresh, uniquely named database on the shared server, for one test class
/// (use as an xunit class fixture). Dropped when the class is done.
/// </summary>
public class TestDatabase : IAsyncLifetime
{
    /// <summary>The server the database lives on.</summary>
    public MariaDbServer Server { get; private set; } = null!;

    /// <summary>The database name (<c>kvtest_…</c>).</summary>
    public string Name { get; } = "kvtest_" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>Admin connection string with this database as default.</summary>
    public string ConnectionString => Server.ConnectionString(Name);

    /// <summary>Opens an admin connection to this database.</summary>
    public async Task<MySqlConnection> OpenAsync()
    {
        var connection = new MySqlConnection(ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    /// <summary>
    /// Opens a transaction that holds the table's kv_tables row lock, as every KvStore write does until
    /// its commit is visible. Dispose the connection (or run COMMIT/ROLLBACK on it) to release it.
    /// </summary>
    public async Task<MySqlConnection> HoldTableRowAsync(string table)
    {
        var holder = await OpenAsync();
        await using var hold = new MySqlCommand("START TRANSACTION; SELECT rev FROM kv_tables WHERE name = @t FOR UPDATE", holder);
        hold.Parameters.AddWithValue("@t", table);
        await hold.ExecuteScalarAsync();
        return holder;
    }

    /// <summary>Waits until <paramref name="count"/> sessions of this database run a statement matching the LIKE pattern; returns their ids.</summary>
    public async Task<IReadOnlyList<long>> WaitForStatementsAsync(string likePattern, int count = 1)
    {
        IReadOnlyList<long> ids = [];
        await Eventually.UntilAsync(
            async () => (ids = await Server.SessionsRunningAsync(Name, likePattern)).Count >= count,
            () => $"fewer than {count} sessions ran a statement like '{likePattern}'");
        return ids;
    }

    /// <inheritdoc />
    public virtual async Task InitializeAsync()
    {
        Server = await MariaDbServer.Shared;
        await Server.ExecuteAsync($"CREATE DATABASE `{Name}` CHARACTER SET utf8mb4");
    }

    /// <inheritdoc />
    public virtual async Task DisposeAsync()
    {
        MySqlConnection.ClearAllPools();
        await Server.ExecuteAsync($"DROP DATABASE IF EXISTS `{Name}`");
    }
}
