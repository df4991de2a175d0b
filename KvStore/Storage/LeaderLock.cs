using System.Data;
using Dapper;
using MySqlConnector;

namespace KvStore.Storage;

/// <summary>
/// One active instance across processes (the expiry service, a change-stream reader): a MySQL <c>GET_LOCK</c> held on a dedicated,
/// unpooled connection. If the holder dies its connection closes, the server releases the lock, and a
/// standby polling for it takes over. The session's wait_timeout is short so that even a holder whose
/// host vanished without closing its socket frees the lock within about 30 s; holders check the lock
/// more often than that, so their own session never idles out.
/// </summary>
internal sealed class LeaderLock(string connectionString, string lockName) : IAsyncDisposable
{
    private MySqlConnection? _connection;

    public string Name => lockName;

    /// <summary>Tries once to take the lock; true when this instance is now the leader.</summary>
    public async Task<bool> TryAcquireAsync(CancellationToken cancellationToken)
    {
        await ReleaseAsync().ConfigureAwait(false);
        var connection = new MySqlConnection(new MySqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            var acquired = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
                "SET SESSION wait_timeout = 30; SELECT GET_LOCK(@name, 0)", new { name = lockName }, cancellationToken: cancellationToken)).ConfigureAwait(false);
            if (acquired == 1)
            {
                _connection = connection;
                return true;
            }
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        await connection.DisposeAsync().ConfigureAwait(false);
        return false;
    }

    /// <summary>True while the lock connection is alive and still holds the lock.</summary>
    public async Task<bool> StillHeldAsync(CancellationToken cancellationToken)
    {
        if (_connection is not { State: ConnectionState.Open } connection)
        {
            return false;
        }

        try
        {
            return await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
                "SELECT IS_USED_LOCK(@name) = CONNECTION_ID()", new { name = lockName }, cancellationToken: cancellationToken)).ConfigureAwait(false) == 1;
        }
        catch (MySqlException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    public async Task ReleaseAsync()
    {
        var connection = Interlocked.Exchange(ref _connection, null);
        if (connection is null)
        {
            return;
        }

        try
        {
            if (connection.State == ConnectionState.Open)
            {
                await connection.ExecuteAsync(new CommandDefinition("DO RELEASE_LOCK(@name)", new { name = lockName })).ConfigureAwait(false);
            }
        }
        catch (MySqlException)
        {
            // Closing the connection releases the lock anyway.
        }
        finally
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync() => new(ReleaseAsync());
}
