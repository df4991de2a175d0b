namespace KvStore.Cdc.Protocol;

/// <summary>Stable error codes of <see cref="ReplicationException"/>; values never change meaning.</summary>
internal enum ReplicationErrorCode
{
    /// <summary>The server answered with an ERR packet (see <see cref="ServerErrorException"/>).</summary>
    ServerError = 1,

    /// <summary>ERR 1236 during the dump: the requested binlog file/position/GTID is gone or invalid. Resync required.</summary>
    BinlogNotAvailable = 2,

    /// <summary>The TCP/TLS connection was closed or failed (server restart, KILL, network).</summary>
    ConnectionLost = 3,

    /// <summary>The server was silent for longer than the read timeout (no events, no heartbeats).</summary>
    Timeout = 4,

    /// <summary>The server sent bytes that do not follow the protocol (bad framing, sequence ids, lengths).</summary>
    ProtocolViolation = 5,

    /// <summary>A binlog event's CRC32 did not match its bytes.</summary>
    ChecksumMismatch = 6,

    /// <summary>Authentication could not proceed under the configured security rules (or an unsupported plugin).</summary>
    Authentication = 7,

    /// <summary>TLS was required but unavailable, or the server certificate was rejected.</summary>
    Tls = 8,

    /// <summary>The server is not set up for replication (binlog disabled, unknown checksum algorithm...).</summary>
    ServerConfiguration = 9,
}
