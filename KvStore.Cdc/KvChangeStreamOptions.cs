namespace KvStore.Cdc;

/// <summary>Settings of a <see cref="KvChangeStream"/>.</summary>
public sealed class KvChangeStreamOptions
{
    /// <summary>
    /// MySqlConnector-style connection string of the KvStore database (required). Its user needs
    /// REPLICATION SLAVE and BINLOG MONITOR (MariaDB) / REPLICATION CLIENT (MySQL), plus SELECT,
    /// INSERT and UPDATE on <c>kv_cdc_checkpoints</c>. <c>SslMode</c>, <c>SslCa</c> are honoured;
    /// TLS certificates are validated unless <see cref="DisableCertificateValidation"/> is set.
    /// </summary>
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>Name of the stream: one active reader and one checkpoint per name. Default <c>default</c>.</summary>
    public string StreamName { get; set; } = "default";

    /// <summary>Replica server id (must be unique among the server's replicas). Default: derived from the stream name.</summary>
    public uint? ServerId { get; set; }

    /// <summary>Heartbeat period requested from the server; a connection silent for 3 periods is treated as dead. Default 2 s.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How often the latest acknowledged position is written to <c>kv_cdc_checkpoints</c>. Default 200 ms. Zero writes on every acknowledgement.</summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>How often a standby tries to become the active reader. Default 1 s.</summary>
    public TimeSpan LeaderRetryInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>First reconnect delay; later ones grow exponentially with jitter up to <see cref="MaxReconnectDelay"/>. Default 100 ms.</summary>
    public TimeSpan ReconnectBaseDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest reconnect delay. Default 5 s.</summary>
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Committed transactions buffered ahead of the consumer (back-pressure beyond it). Default 256.</summary>
    public int MaxBufferedBatches { get; set; } = 256;

    /// <summary>Verify binlog CRC32 checksums (a corrupt event is an error). Default true.</summary>
    public bool VerifyChecksums { get; set; } = true;

    /// <summary>Skip TLS certificate validation (never in production). Default false.</summary>
    public bool DisableCertificateValidation { get; set; }

    /// <summary>Allow fetching the server's RSA key for caching_sha2_password over plain TCP (MySQL 8). Default false.</summary>
    public bool AllowPublicKeyRetrieval { get; set; }

    /// <summary>Check server settings and privileges when the stream starts, failing with one message that lists every problem. Default true.</summary>
    public bool CheckServerOnStart { get; set; } = true;

    /// <summary>Clock for timeouts, heartbeats and backoff. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
