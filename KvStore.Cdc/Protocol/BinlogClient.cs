using System.Globalization;

namespace KvStore.Cdc.Protocol;

/// <summary>
/// Starts binlog dumps: connects as a replica, sets the session up for the server's flavour (MariaDB or
/// MySQL), registers, sends COM_BINLOG_DUMP(_GTID) and hands back the event stream. Stateless between
/// calls and safe to share; each <see cref="StartAsync"/> opens its own connection.
/// </summary>
internal sealed class BinlogClient
{
    private readonly BinlogClientOptions _options;

    public BinlogClient(BinlogClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
    }

    public BinlogClientOptions Options => _options;

    /// <summary>Connects and starts streaming from <paramref name="start"/>. Dispose the stream to disconnect.</summary>
    /// <exception cref="ReplicationException">Connection, auth, TLS or setup failed (see the concrete types).</exception>
    /// <remarks>
    /// ERR 1236 (position purged) is not detected here but by the first <see cref="BinlogEventStream.MoveNextAsync"/>:
    /// the server answers the dump command with a fake ROTATE or the error, in the stream.
    /// </remarks>
    public async Task<BinlogEventStream> StartAsync(BinlogStartPosition start, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(start);
        var connection = await ReplicationConnection.OpenAsync(_options, cancellationToken).ConfigureAwait(false);
        try
        {
            var version = connection.ServerVersion;
            CheckFlavour(start, version);

            MariaDbGtidPosition? knownMariaDbGtid = null;
            MySqlGtidSet? knownMySqlGtid = null;
            if (start.Kind == BinlogStartKind.Now)
            {
                var status = await ReadStatusAsync(connection, cancellationToken).ConfigureAwait(false);
                start = BinlogStartPosition.FromPosition(status.Position);
                knownMariaDbGtid = status.MariaDbGtid;
                knownMySqlGtid = status.MySqlGtid;
            }

            var checksum = await NegotiateChecksumAsync(connection, cancellationToken).ConfigureAwait(false);
            foreach (var statement in SessionStatements(version, start, _options))
            {
                await connection.ExecuteAsync(statement, cancellationToken).ConfigureAwait(false);
            }

            await connection.SendCommandAsync(ReplicationCommands.RegisterReplica(_options.ServerId), cancellationToken).ConfigureAwait(false);
            var reply = await connection.ReadPacketAsync(cancellationToken).ConfigureAwait(false);
            ServerPackets.ExpectOk(reply.Span, "registering as a replica (COM_REGISTER_SLAVE; needs REPLICATION SLAVE)");

            await connection.SendCommandAsync(DumpCommand(version, start, _options), cancellationToken).ConfigureAwait(false);
            var packets = connection.BeginStreaming(_options.EffectiveReadTimeout);
            var tracker = new BinlogPositionTracker(start, checksum, knownMariaDbGtid, knownMySqlGtid);
            return new BinlogEventStream(packets, tracker, _options.VerifyChecksums, start.ToString(), connection, version, connection.ConnectionId);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Reads the current end of the binlog (and GTID state) on a short-lived connection.</summary>
    public async Task<BinlogServerStatus> ReadServerStatusAsync(CancellationToken cancellationToken = default)
    {
        var connection = await ReplicationConnection.OpenAsync(_options, cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            return await ReadStatusAsync(connection, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The SET statements after checksum negotiation, in order: heartbeat period; MariaDB capability and
    /// GTID connect state; MySQL replica UUID.
    /// </summary>
    internal static IReadOnlyList<string> SessionStatements(ServerVersion version, BinlogStartPosition start, BinlogClientOptions options)
    {
        var statements = new List<string>();
        if (options.HeartbeatPeriod > TimeSpan.Zero)
        {
            var nanoseconds = (options.HeartbeatPeriod.Ticks * 100).ToString(CultureInfo.InvariantCulture);
            statements.Add($"SET @master_heartbeat_period = {nanoseconds}");
            if (!version.IsMariaDb)
            {
                statements.Add($"SET @source_heartbeat_period = {nanoseconds}");
            }
        }

        if (version.IsMariaDb)
        {
            // Without capability 4 (GTID) MariaDB replaces GTID/GTID_LIST/CHECKPOINT/ANNOTATE events with dummy QUERYs.
            statements.Add("SET @mariadb_slave_capability = 4");
            if (start.Kind == BinlogStartKind.MariaDbGtid)
            {
                // The text is digits, dashes and commas only (MariaDbGtidPosition formats it), so inlining is safe.
                statements.Add($"SET @slave_connect_state = '{start.MariaDbGtid}'");
                statements.Add($"SET @slave_gtid_strict_mode = {(options.GtidStrictMode ? 1 : 0)}");
                statements.Add($"SET @slave_gtid_ignore_duplicates = {(options.GtidIgnoreDuplicates ? 1 : 0)}");
            }
        }
        else
        {
            var uuid = options.EffectiveReplicaUuid.ToString("D");
            statements.Add($"SET @slave_uuid = '{uuid}', @replica_uuid = '{uuid}'");
        }

        return statements;
    }

    /// <summary>The COM_BINLOG_DUMP or COM_BINLOG_DUMP_GTID payload for a resolved start.</summary>
    internal static byte[] DumpCommand(ServerVersion version, BinlogStartPosition start, BinlogClientOptions options)
    {
        var flags = options.NonBlocking ? BinlogDumpFlags.NonBlocking : BinlogDumpFlags.None;
        if (version.IsMariaDb && options.SendAnnotateRows)
        {
            flags |= BinlogDumpFlags.MariaDbSendAnnotateRows;
        }

        switch (start.Kind)
        {
            case BinlogStartKind.FilePosition:
                var position = start.FilePosition!.Value;
                if (position.Position > uint.MaxValue)
                {
                    throw new ArgumentException(
                        $"COM_BINLOG_DUMP takes a 32-bit offset; {position} is beyond 4 GiB. Resume by GTID instead.", nameof(start));
                }

                return ReplicationCommands.BinlogDump((uint)position.Position, flags, options.ServerId, position.FileName);

            case BinlogStartKind.MariaDbGtid:
                // File and offset are ignored: the server finds the start from @slave_connect_state.
                return ReplicationCommands.BinlogDump(4, flags, options.ServerId, string.Empty);

            case BinlogStartKind.MySqlGtid:
                return ReplicationCommands.BinlogDumpGtid(flags, options.ServerId, string.Empty, 4, start.MySqlGtid!);

            default:
                throw new ArgumentException("Resolve BinlogStartPosition.Now before building the dump command.", nameof(start));
        }
    }

    internal static BinlogChecksumAlgorithm ParseChecksum(string? value) => value?.Trim().ToUpperInvariant() switch
    {
        null or "" or "NONE" => BinlogChecksumAlgorithm.None,
        "CRC32" => BinlogChecksumAlgorithm.Crc32,
        _ => throw new ReplicationSetupException(ReplicationErrorCode.ServerConfiguration, $"Unknown binlog checksum algorithm '{value}'."),
    };

    private static void CheckFlavour(BinlogStartPosition start, ServerVersion version)
    {
        if (start.Kind == BinlogStartKind.MariaDbGtid && !version.IsMariaDb)
        {
            throw new ArgumentException($"A MariaDB GTID start ({start}) was given but the server is {version}.", nameof(start));
        }

        if (start.Kind == BinlogStartKind.MySqlGtid && version.IsMariaDb)
        {
            throw new ArgumentException($"A MySQL GTID set start ({start}) was given but the server is {version}.", nameof(start));
        }
    }

    private static async Task<BinlogChecksumAlgorithm> NegotiateChecksumAsync(ReplicationConnection connection, CancellationToken cancellationToken)
    {
        // Announcing what the server logs is mandatory: without it the dump fails with ERR 1236. The value
        // only decides whether the first fake ROTATE has a CRC; every later event follows its file's FDE.
        try
        {
            await connection.ExecuteAsync("SET @master_binlog_checksum = @@global.binlog_checksum", cancellationToken).ConfigureAwait(false);
        }
        catch (ServerErrorException ex) when (ex.ServerErrorCode == 1193)
        {
            // ER_UNKNOWN_SYSTEM_VARIABLE: a server too old to have binlog checksums.
            return BinlogChecksumAlgorithm.None;
        }

        var version = connection.ServerVersion;
        if (!version.IsMariaDb && version.IsAtLeast(8, 0, 23))
        {
            await connection.ExecuteAsync("SET @source_binlog_checksum = @@global.binlog_checksum", cancellationToken).ConfigureAwait(false);
        }

        var result = await connection.QueryAsync("SELECT @master_binlog_checksum", cancellationToken).ConfigureAwait(false);
        return ParseChecksum(result.Rows.Count > 0 ? result.Rows[0][0] : null);
    }

    private static async Task<BinlogServerStatus> ReadStatusAsync(ReplicationConnection connection, CancellationToken cancellationToken)
    {
        var version = connection.ServerVersion;
        if (!version.IsMariaDb)
        {
            var status = await ReadBinlogStatusAsync(connection, cancellationToken).ConfigureAwait(false);
            var gtidMode = await connection.QueryAsync("SELECT @@GLOBAL.gtid_mode", cancellationToken).ConfigureAwait(false);
            MySqlGtidSet? executed = null;
            if (string.Equals(gtidMode.Rows.Count > 0 ? gtidMode.Rows[0][0] : null, "ON", StringComparison.OrdinalIgnoreCase))
            {
                try
                {
                    executed = MySqlGtidSet.Parse(status.Get(0, "Executed_Gtid_Set") ?? string.Empty);
                }
                catch (FormatException)
                {
                    // Tagged GTIDs: no GTID resume point, file/offset still works.
                }
            }

            return new BinlogServerStatus(ToPosition(status), null, executed);
        }

        // MariaDB reports file/offset and GTID state in separate statements; accept the pair only when the
        // offset did not move in between, so the two describe the same instant.
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var before = ToPosition(await ReadBinlogStatusAsync(connection, cancellationToken).ConfigureAwait(false));
            var gtid = await connection.QueryAsync("SELECT @@GLOBAL.gtid_binlog_pos", cancellationToken).ConfigureAwait(false);
            var after = ToPosition(await ReadBinlogStatusAsync(connection, cancellationToken).ConfigureAwait(false));
            if (before == after)
            {
                var text = gtid.Rows.Count > 0 ? gtid.Rows[0][0] : null;
                return new BinlogServerStatus(after, MariaDbGtidPosition.Parse(text ?? string.Empty), null);
            }
        }

        var last = ToPosition(await ReadBinlogStatusAsync(connection, cancellationToken).ConfigureAwait(false));
        return new BinlogServerStatus(last, null, null);
    }

    private static async Task<TextResultSet> ReadBinlogStatusAsync(ReplicationConnection connection, CancellationToken cancellationToken)
    {
        var version = connection.ServerVersion;
        var sql = version.IsMariaDb
            ? (version.IsAtLeast(10, 5, 2) ? "SHOW BINLOG STATUS" : "SHOW MASTER STATUS")
            : (version.IsAtLeast(8, 2, 0) ? "SHOW BINARY LOG STATUS" : "SHOW MASTER STATUS");
        var result = await connection.QueryAsync(sql, cancellationToken).ConfigureAwait(false);
        if (result.Rows.Count == 0)
        {
            throw new ReplicationSetupException(
                ReplicationErrorCode.ServerConfiguration,
                $"{sql} returned nothing: binary logging is off. Start the server with log_bin (and binlog_format=ROW).");
        }

        return result;
    }

    private static BinlogPosition ToPosition(TextResultSet status)
    {
        var file = status.Get(0, "File");
        var position = status.Get(0, "Position");
        if (string.IsNullOrEmpty(file) || !long.TryParse(position, NumberStyles.None, CultureInfo.InvariantCulture, out var offset))
        {
            throw new ReplicationProtocolException($"Unexpected binlog status row (File='{file}', Position='{position}').");
        }

        return new BinlogPosition(file, offset);
    }
}
