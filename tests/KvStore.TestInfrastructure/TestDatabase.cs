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
