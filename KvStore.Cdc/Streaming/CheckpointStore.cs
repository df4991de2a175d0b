using Dapper;
using MySqlConnector;

namespace KvStore.Cdc.Streaming;

/// <summary>Reads and writes the durable position of a named stream (<c>kv_cdc_checkpoints</c>).</summary>
internal sealed class CheckpointStore(string connectionString, string stream)
{
    public async Task<StoredCheckpoint?> LoadAsync(CancellationToken cancellationToken)
    {
        var connection = new MySqlConnection(connectionString);
        await using var scope = connection.ConfigureAwait(false);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        return await connection.QuerySingleOrDefaultAsync<StoredCheckpoint>(new CommandDefinition(
            "SELECT binlog_file AS File, binlog_pos AS BinlogOffset, gtid AS Gtid, server_id AS ServerId FROM kv_cdc_checkpoints WHERE stream = @stream",
            new { stream },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
    }

    public async Task SaveAsync(KvStreamPosition position, uint serverId, CancellationToken cancellationToken)
    {
        var connection = new MySqlConnection(connectionString);
        await using var scope = connection.ConfigureAwait(false);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO kv_cdc_checkpoints (stream, binlog_file, binlog_pos, gtid, server_id, updated_at) " +
            "VALUES (@stream, @file, @offset, @gtid, @serverId, UTC_TIMESTAMP(6)) " +
            "ON DUPLICATE KEY UPDATE binlog_file = VALUES(binlog_file), binlog_pos = VALUES(binlog_pos), gtid = VALUES(gtid), " +
            "server_id = VALUES(server_id), updated_at = VALUES(updated_at)",
            new { stream, file = position.File, offset = position.Offset, gtid = position.Gtid, serverId },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
    }

    public async Task DeleteAsync(CancellationToken cancellationToken)
    {
        var connection = new MySqlConnection(connectionString);
        await using var scope = connection.ConfigureAwait(false);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM kv_cdc_checkpoints WHERE stream = @stream", new { stream }, cancellationToken: cancellationToken)).ConfigureAwait(false);
    }
}

/// <summary>A row of <c>kv_cdc_checkpoints</c>.</summary>
internal sealed class StoredCheckpoint
{
    public string File { get; set; } = string.Empty;

    public ulong BinlogOffset { get; set; }

    public string? Gtid { get; set; }

    public uint? ServerId { get; set; }

    public KvStreamPosition ToPosition() => new(File, (long)BinlogOffset, Gtid);
}
