namespace KvStore.Cdc.Protocol;

/// <summary>
/// ERR 1236 (ER_MASTER_FATAL_ERROR_READING_BINLOG) in the dump stream: the requested file was purged
/// or does not exist, the position is invalid, or the GTID position cannot be served. Retrying the
/// same position will fail again: the consumer must resync (full snapshot) from a new position.
/// </summary>
internal sealed class BinlogNotAvailableException : ReplicationException
{
    public const ushort ServerErrorNumber = 1236;

    public BinlogNotAvailableException(string sqlState, string serverMessage, string requestedStart)
        : base(
            ReplicationErrorCode.BinlogNotAvailable,
            $"The server cannot stream the binlog from {requestedStart} (error 1236, {sqlState}): {serverMessage} " +
            "The position was probably purged or is invalid; a resync from a fresh snapshot is required.")
    {
        SqlState = sqlState;
        ServerMessage = serverMessage;
        RequestedStart = requestedStart;
    }

    public string SqlState { get; }

    public string ServerMessage { get; }

    /// <summary>The start position that was requested, as text.</summary>
    public string RequestedStart { get; }

    public override bool IsTransient => false;
}
