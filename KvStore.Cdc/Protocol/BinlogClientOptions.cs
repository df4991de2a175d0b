namespace KvStore.Cdc.Protocol;

/// <summary>
/// Settings of the replication client: where to connect, how to authenticate, TLS, and the dump session.
/// A POCO; call <see cref="Validate"/> (the client does) before use.
/// </summary>
internal sealed class BinlogClientOptions
{
    /// <summary>Server host name or IP address. Default <c>localhost</c>. Also the name checked against the TLS certificate.</summary>
    public string Host { get; set; } = "localhost";

    /// <summary>TCP port. Default 3306.</summary>
    public int Port { get; set; } = 3306;

    /// <summary>User with REPLICATION SLAVE (and BINLOG MONITOR / REPLICATION CLIENT for "now" starts).</summary>
    public string UserName { get; set; } = string.Empty;

    /// <summary>Password; null or empty for none.</summary>
    public string? Password { get; set; }

    /// <summary>When to use TLS. Default <see cref="SslMode.Preferred"/> (TLS when offered, always validated).</summary>
    public SslMode SslMode { get; set; } = SslMode.Preferred;

    /// <summary>PEM file with the CA certificate(s) that must sign the server certificate; default: the system trust store.</summary>
    public string? SslCaFile { get; set; }

    /// <summary>
    /// Accept any server certificate. Default false. Only for tests or trusted networks: TLS then no longer
    /// protects against a man in the middle.
    /// </summary>
    public bool DisableCertificateValidation { get; set; }

    /// <summary>
    /// PEM file with the server's RSA public key, for caching_sha2_password full authentication over plain
    /// TCP without fetching the key from the server. Default none.
    /// </summary>
    public string? ServerRsaPublicKeyFile { get; set; }

    /// <summary>
    /// Let caching_sha2_password fetch the server's RSA key over an unencrypted connection. Default false:
    /// a man in the middle could hand out its own key and learn the password. Prefer TLS or a pinned key.
    /// </summary>
    public bool AllowPublicKeyRetrieval { get; set; }

    /// <summary>Limit for TCP connect, TLS and authentication. Default 15 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Limit for each setup command (SET, SHOW BINLOG STATUS, COM_REGISTER_SLAVE). Default 30 s.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>This replica's server_id: non-zero and unique among the server's replicas. Required.</summary>
    public uint ServerId { get; set; }

    /// <summary>
    /// How often an idle server sends a heartbeat (<c>@master_heartbeat_period</c>). Default 5 s;
    /// <see cref="TimeSpan.Zero"/> turns heartbeats off.
    /// </summary>
    public TimeSpan HeartbeatPeriod { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Longest silence from the server before the dump connection is declared dead. Default (null):
    /// twice <see cref="HeartbeatPeriod"/>, or no limit when heartbeats are off.
    /// </summary>
    public TimeSpan? ReadTimeout { get; set; }

    /// <summary>Ask the server to end the stream with EOF at the end of the binlog instead of waiting. Default false.</summary>
    public bool NonBlocking { get; set; }

    /// <summary>MariaDB: also send ANNOTATE_ROWS events (the SQL text of row changes). Default false.</summary>
    public bool SendAnnotateRows { get; set; }

    /// <summary>Check every event's CRC32 when the binlog has checksums. Default true.</summary>
    public bool VerifyChecksums { get; set; } = true;

    /// <summary>MariaDB GTID starts: <c>@slave_gtid_strict_mode</c>. Default true.</summary>
    public bool GtidStrictMode { get; set; } = true;

    /// <summary>MariaDB GTID starts: <c>@slave_gtid_ignore_duplicates</c>. Default false.</summary>
    public bool GtidIgnoreDuplicates { get; set; }

    /// <summary>
    /// MySQL: this replica's UUID (<c>@replica_uuid</c>), which lets the server kill a stale dump thread of
    /// the same replica. Default: a UUID derived from <see cref="ServerId"/>.
    /// </summary>
    public Guid? ReplicaUuid { get; set; }

    /// <summary>Largest accepted event/packet in bytes. Default 1 GiB (the largest <c>max_allowed_packet</c>).</summary>
    public int MaxPacketSize { get; set; } = PacketReader.DefaultMaxPayloadLength;

    /// <summary>Clock for timeouts. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>The read timeout in force for the dump.</summary>
    internal TimeSpan EffectiveReadTimeout =>
        ReadTimeout ?? (HeartbeatPeriod > TimeSpan.Zero ? HeartbeatPeriod * 2 : Timeout.InfiniteTimeSpan);

    /// <summary>The replica UUID in force (MySQL).</summary>
    internal Guid EffectiveReplicaUuid => ReplicaUuid ?? new Guid($"6b767374-6f72-4563-8463-{ServerId:x12}");

    /// <summary>Throws <see cref="ArgumentException"/> for an unusable combination.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Host))
        {
            throw new ArgumentException("Host is required.", nameof(Host));
        }

        if (Port is < 1 or > 65535)
        {
            throw new ArgumentException($"Port {Port} is not a TCP port.", nameof(Port));
        }

        if (string.IsNullOrEmpty(UserName))
        {
            throw new ArgumentException("UserName is required.", nameof(UserName));
        }

        if (ServerId == 0)
        {
            throw new ArgumentException("ServerId must be non-zero and unique among the server's replicas (0 makes the server end the dump).", nameof(ServerId));
        }

        if (ConnectTimeout <= TimeSpan.Zero || CommandTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("ConnectTimeout and CommandTimeout must be positive.");
        }

        if (HeartbeatPeriod < TimeSpan.Zero || HeartbeatPeriod > TimeSpan.FromSeconds(4_294_967))
        {
            throw new ArgumentException("HeartbeatPeriod must be between 0 (off) and 4294967 s.", nameof(HeartbeatPeriod));
        }

        if (HeartbeatPeriod > TimeSpan.Zero && HeartbeatPeriod < TimeSpan.FromMilliseconds(1))
        {
            throw new ArgumentException("HeartbeatPeriod must be at least 1 ms (the server's resolution).", nameof(HeartbeatPeriod));
        }

        if (ReadTimeout is { } readTimeout && readTimeout <= TimeSpan.Zero && readTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentException("ReadTimeout must be positive (or Timeout.InfiniteTimeSpan).", nameof(ReadTimeout));
        }

        if (ReadTimeout is { } limit && HeartbeatPeriod > TimeSpan.Zero && limit != Timeout.InfiniteTimeSpan && limit <= HeartbeatPeriod)
        {
            throw new ArgumentException("ReadTimeout must be longer than HeartbeatPeriod, or an idle connection is declared dead between heartbeats.", nameof(ReadTimeout));
        }

        if (SslMode == SslMode.None && SslCaFile is not null)
        {
            throw new ArgumentException("SslCaFile is set but SslMode is None.", nameof(SslCaFile));
        }

        if (SslCaFile is not null && !File.Exists(SslCaFile))
        {
            throw new ArgumentException($"SslCaFile '{SslCaFile}' does not exist.", nameof(SslCaFile));
        }

        if (ServerRsaPublicKeyFile is not null && !File.Exists(ServerRsaPublicKeyFile))
        {
            throw new ArgumentException($"ServerRsaPublicKeyFile '{ServerRsaPublicKeyFile}' does not exist.", nameof(ServerRsaPublicKeyFile));
        }

        if (MaxPacketSize < 1024)
        {
            throw new ArgumentException("MaxPacketSize must be at least 1024 bytes.", nameof(MaxPacketSize));
        }

        ArgumentNullException.ThrowIfNull(TimeProvider);
    }
}
