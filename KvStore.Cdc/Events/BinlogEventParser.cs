using System.Buffers.Binary;
using System.IO.Hashing;

namespace KvStore.Cdc.Events;

/// <summary>Settings of a <see cref="BinlogEventParser"/>.</summary>
internal sealed class BinlogParserOptions
{
    /// <summary>Verify the CRC32 of every checksummed event. Default: true. Turn off only to salvage a damaged file.</summary>
    public bool VerifyChecksums { get; init; } = true;

    /// <summary>
    /// Checksum state before the first FORMAT_DESCRIPTION arrives. Over the network set it to the value of
    /// <c>@master_binlog_checksum</c>, because the fake ROTATE that opens a dump precedes the FDE. Default:
    /// <see cref="ChecksumAlgorithm.Unknown"/>, which accepts only ROTATE/HEARTBEAT/FDE events and detects their CRC.
    /// </summary>
    public ChecksumAlgorithm InitialChecksum { get; init; } = ChecksumAlgorithm.Unknown;
}

/// <summary>
/// Turns raw binlog events (header + body + optional CRC32, as read from a file or a replication packet
/// without its leading 0x00) into typed <see cref="BinlogEvent"/>s. Stateful, one per stream and not
/// thread-safe: it tracks the current FORMAT_DESCRIPTION (checksum algorithm, post-header lengths) and the
/// TABLE_MAPs by table id. Events returned may reference the input memory (ROWS events do), so the caller
/// must keep the buffer unchanged while it uses them.
/// </summary>
internal sealed class BinlogEventParser
{
    private const int ChecksumSize = 4;

    // Table ids grow over a server's life; the cache is pruned at transaction boundaries once this large.
    private const int MaxCachedTables = 4096;

    private readonly Dictionary<ulong, TableMapEvent> _tables = [];
    private readonly ChecksumAlgorithm _initialChecksum;
    private readonly Func<ulong, TableMapEvent?> _findTable;

    public BinlogEventParser(BinlogParserOptions? options = null)
    {
        options ??= new BinlogParserOptions();
        _findTable = FindTable;
        VerifyChecksums = options.VerifyChecksums;
        _initialChecksum = options.InitialChecksum;
        ChecksumAlgorithm = _initialChecksum;
    }

    /// <summary>Whether CRC32 checksums are verified.</summary>
    public bool VerifyChecksums { get; }

    /// <summary>The checksum algorithm expected on the next (non-FDE) event.</summary>
    public ChecksumAlgorithm ChecksumAlgorithm { get; private set; }

    /// <summary>The FORMAT_DESCRIPTION currently in force, or null before the first one.</summary>
    public FormatDescriptionEvent? FormatDescription { get; private set; }

    /// <summary>Number of cached TABLE_MAPs (diagnostics).</summary>
    public int CachedTableCount => _tables.Count;

    /// <summary>
    /// Parses one complete event. Throws <see cref="BinlogFormatException"/> for truncated or inconsistent
    /// events, a checksum mismatch (naming the event type and position), or a ROWS event without TABLE_MAP.
    /// Unknown event types never throw; they come back as <see cref="UnknownEvent"/>.
    /// </summary>
    public BinlogEvent Parse(ReadOnlyMemory<byte> eventBytes)
    {
        var span = eventBytes.Span;
        var header = BinlogEventHeader.Read(span);
        if (header.EventLength != span.Length)
        {
            throw new BinlogFormatException(
                $"{header.Type} event at log_pos {header.LogPosition}: the header says {header.EventLength} bytes but {span.Length} were given.");
        }

        try
        {
            if (header.Type == BinlogEventType.FormatDescription)
            {
                return ParseFormatDescription(header, span);
            }

            var checksumLength = GetChecksumLength(header, span);
            if (checksumLength > 0 && VerifyChecksums)
            {
                VerifyChecksum(header, span);
            }

            var body = eventBytes[BinlogEventHeader.Size..(span.Length - checksumLength)];
            return ParseBody(header, body);
        }
        catch (BinlogFormatException ex) when (ex.Code == BinlogErrorCode.Malformed && !ex.Message.Contains("log_pos", StringComparison.Ordinal))
        {
            throw new BinlogFormatException(ex.Code, $"{header.Type} event at log_pos {header.LogPosition}: {ex.Message}", ex);
        }
        catch (Exception ex) when (ex is ArgumentException or IndexOutOfRangeException or OverflowException)
        {
            throw new BinlogFormatException($"{header.Type} event at log_pos {header.LogPosition} is malformed: {ex.Message}", ex);
        }
    }

    /// <summary>The most recent TABLE_MAP with this id, if any.</summary>
    public bool TryGetTableMap(ulong tableId, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out TableMapEvent tableMap) =>
        _tables.TryGetValue(tableId, out tableMap);

    /// <summary>Sets the checksum state explicitly (e.g. from <c>@master_binlog_checksum</c> before the first event).</summary>
    public void SetChecksumAlgorithm(ChecksumAlgorithm algorithm) => ChecksumAlgorithm = algorithm;

    /// <summary>Forgets everything (for a new connection): FDE, checksum state (back to the initial one) and table maps.</summary>
    public void Reset()
    {
        _tables.Clear();
        FormatDescription = null;
        ChecksumAlgorithm = _initialChecksum;
    }

    private int GetChecksumLength(BinlogEventHeader header, ReadOnlySpan<byte> span)
    {
        switch (ChecksumAlgorithm)
        {
            case ChecksumAlgorithm.Crc32:
                return span.Length >= BinlogEventHeader.Size + ChecksumSize
                    ? ChecksumSize
                    : throw new BinlogFormatException($"{header.Type} event at log_pos {header.LogPosition} is too short to hold its CRC32.");
            case ChecksumAlgorithm.None:
                return 0;
            default:
                // Before any FDE only the events that open a dump can arrive; whether they carry a CRC depends on
                // the server's checksum state, so it is detected (a false match has probability 2^-32).
                if (header.Type is not (BinlogEventType.Rotate or BinlogEventType.Heartbeat or BinlogEventType.HeartbeatV2))
                {
                    throw new BinlogFormatException(
                        $"{header.Type} event at log_pos {header.LogPosition} arrived before any FORMAT_DESCRIPTION event, so its checksum cannot be checked.");
                }

                return span.Length >= BinlogEventHeader.Size + ChecksumSize && StoredChecksum(span) == ComputeChecksum(span) ? ChecksumSize : 0;
        }
    }

    private static uint StoredChecksum(ReadOnlySpan<byte> span) => BinaryPrimitives.ReadUInt32LittleEndian(span[^ChecksumSize..]);

    private static uint ComputeChecksum(ReadOnlySpan<byte> span) => Crc32.HashToUInt32(span[..^ChecksumSize]);

    private static void VerifyChecksum(BinlogEventHeader header, ReadOnlySpan<byte> span)
    {
        var stored = StoredChecksum(span);
        var computed = ComputeChecksum(span);
        if (stored != computed)
        {
            throw new BinlogFormatException(
                BinlogErrorCode.ChecksumMismatch,
                $"{header.Type} event at log_pos {header.LogPosition} ({span.Length} bytes) failed its CRC32 check: stored 0x{stored:x8}, computed 0x{computed:x8}. The binlog data is corrupted.");
        }
    }

    /// <summary>
    /// The server sets LOG_EVENT_BINLOG_IN_USE_F in the FDE of the file it is writing and clears it in place on
    /// close without rewriting the CRC, so the CRC is always that of the FDE with the flag cleared.
    /// </summary>
    private static void VerifyFormatDescriptionChecksum(BinlogEventHeader header, ReadOnlySpan<byte> span)
    {
        const int FlagsOffset = 17;
        const byte InUseFlag = 0x01;
        if ((span[FlagsOffset] & InUseFlag) == 0)
        {
            VerifyChecksum(header, span);
            return;
        }

        Span<byte> copy = span.Length <= 1024 ? stackalloc byte[span.Length] : new byte[span.Length];
        span.CopyTo(copy);
        copy[FlagsOffset] &= unchecked((byte)~InUseFlag);
        VerifyChecksum(header, copy);
    }

    private FormatDescriptionEvent ParseFormatDescription(BinlogEventHeader header, ReadOnlySpan<byte> span)
    {
        const int FixedPart = 2 + 50 + 4 + 1;
        var body = span[BinlogEventHeader.Size..];
        var reader = new BodyReader(body);
        var binlogVersion = reader.ReadUInt16();
        var serverVersion = FormatDescriptionEvent.ReadServerVersion(reader.ReadBytes(50));
        var createTimestamp = reader.ReadUInt32();
        var headerLength = reader.ReadByte();
        if (binlogVersion != 4 || headerLength != BinlogEventHeader.Size)
        {
            throw new BinlogFormatException(
                $"FORMAT_DESCRIPTION at log_pos {header.LogPosition}: binlog version {binlogVersion} with {headerLength}-byte headers is not supported (need v4, 19 bytes).");
        }

        // Two independent signs of a checksum-aware server (version >= 5.6.1 / MariaDB 5.3, and the FDE's own
        // post-header length leaving room for the algorithm byte and CRC) must agree, so a single corrupted
        // byte can never make a checksummed FDE look like an old checksum-free one.
        const int FormatDescriptionIndex = FixedPart + (int)BinlogEventType.FormatDescription - 1;
        var versionSaysAware = FormatDescriptionEvent.IsChecksumAware(serverVersion);
        var layoutSaysAware = body.Length > FormatDescriptionIndex && body[FormatDescriptionIndex] == body.Length - 1 - ChecksumSize;
        if (versionSaysAware != layoutSaysAware)
        {
            throw new BinlogFormatException(
                $"FORMAT_DESCRIPTION at log_pos {header.LogPosition} is inconsistent: server version '{serverVersion}' and its post-header lengths disagree on whether events carry checksums (corrupted event?).");
        }

        var algorithm = ChecksumAlgorithm.None;
        var postHeaderEnd = body.Length;
        if (versionSaysAware)
        {
            if (body.Length < FixedPart + 1 + ChecksumSize)
            {
                throw new BinlogFormatException($"FORMAT_DESCRIPTION at log_pos {header.LogPosition} is too short for its checksum fields.");
            }

            var algorithmByte = body[^(1 + ChecksumSize)];
            algorithm = algorithmByte switch
            {
                0 => ChecksumAlgorithm.None,
                1 => ChecksumAlgorithm.Crc32,
                _ => throw new BinlogFormatException(
                    $"FORMAT_DESCRIPTION at log_pos {header.LogPosition} names checksum algorithm {algorithmByte}; only NONE and CRC32 exist."),
            };
            postHeaderEnd = body.Length - 1 - ChecksumSize;

            // Checksum-aware servers always append a CRC to the FDE, even when binlog_checksum=NONE. With
            // NONE a zero value is tolerated, but a wrong non-zero value is corruption (e.g. a flipped algorithm byte).
            if (VerifyChecksums && (algorithm == ChecksumAlgorithm.Crc32 || StoredChecksum(span) != 0))
            {
                VerifyFormatDescriptionChecksum(header, span);
            }
        }

        var postHeaderLengths = body[FixedPart..postHeaderEnd].ToArray();
        var fde = new FormatDescriptionEvent(header, binlogVersion, serverVersion, createTimestamp, headerLength, postHeaderLengths, algorithm);
        FormatDescription = fde;
        ChecksumAlgorithm = algorithm;

        // A new file (or a restarted server): table ids may be reused for other tables.
        _tables.Clear();
        return fde;
    }

    private BinlogEvent ParseBody(BinlogEventHeader header, ReadOnlyMemory<byte> body)
    {
        var span = body.Span;
        switch (header.Type)
        {
            case BinlogEventType.Query:
            {
                var query = QueryEvent.Parse(header, span, PostHeaderLength(BinlogEventType.Query, 13));
                if (query.IsDdl)
                {
                    _tables.Clear();
                }
                else if (query.Kind == QueryKind.Commit)
                {
                    PruneTables();
                }

                return query;
            }

            case BinlogEventType.Rotate:
            {
                var reader = new BodyReader(span);
                var position = reader.ReadUInt64();
                return new RotateEvent(header, position, reader.ReadUtf8(reader.Remaining));
            }

            case BinlogEventType.Xid:
            {
                var reader = new BodyReader(span);
                var xid = new XidEvent(header, reader.ReadUInt64());
                PruneTables();
                return xid;
            }

            case BinlogEventType.TableMap:
                return ParseTableMap(header, span);

            case BinlogEventType.WriteRowsV1 or BinlogEventType.UpdateRowsV1 or BinlogEventType.DeleteRowsV1
                or BinlogEventType.WriteRowsV2 or BinlogEventType.UpdateRowsV2 or BinlogEventType.DeleteRowsV2:
                return RowsEvent.Parse(header, body, PostHeaderLength(header.Type, 8), _findTable);

            case BinlogEventType.Heartbeat or BinlogEventType.HeartbeatV2:
                return HeartbeatEvent.Parse(header, span);

            case BinlogEventType.RowsQuery:
                return RowsQueryEvent.Parse(header, span);

            case BinlogEventType.MySqlGtid or BinlogEventType.MySqlAnonymousGtid:
                return MySqlGtidEvent.Parse(header, span);

            case BinlogEventType.MySqlPreviousGtids:
                return PreviousGtidsEvent.Parse(header, span);

            case BinlogEventType.Incident:
                return IncidentEvent.Parse(header, span);

            case BinlogEventType.MariaDbAnnotateRows:
                return new AnnotateRowsEvent(header, body);

            case BinlogEventType.MariaDbBinlogCheckpoint:
                return BinlogCheckpointEvent.Parse(header, span);

            case BinlogEventType.MariaDbGtid:
                return MariaDbGtidEvent.Parse(header, span);

            case BinlogEventType.MariaDbGtidList:
                return MariaDbGtidListEvent.Parse(header, span);

            case BinlogEventType.PartialUpdateRows:
                return Unsupported(header, span, "PARTIAL_UPDATE_ROWS_EVENT (partial JSON updates)", "set binlog_row_value_options='' on the server", rowsEvent: true);

            case BinlogEventType.TransactionPayload:
                return Unsupported(header, span, "TRANSACTION_PAYLOAD_EVENT (compressed transaction)", "set binlog_transaction_compression=OFF on the server", rowsEvent: false);

            case BinlogEventType.MySqlGtidTagged:
                return Unsupported(header, span, "GTID_TAGGED_LOG_EVENT (tagged GTID)", "do not assign GTID tags (gtid_next='AUTOMATIC:<tag>') on the source", rowsEvent: false);

            case BinlogEventType.MariaDbQueryCompressed:
                // It may be DDL we cannot read, so cached table definitions can no longer be trusted.
                _tables.Clear();
                return Unsupported(header, span, "QUERY_COMPRESSED_EVENT (MariaDB binlog compression)", "set log_bin_compress=OFF on the server", rowsEvent: false);

            case BinlogEventType.MariaDbWriteRowsCompressedV1 or BinlogEventType.MariaDbUpdateRowsCompressedV1 or BinlogEventType.MariaDbDeleteRowsCompressedV1
                or BinlogEventType.MariaDbWriteRowsCompressed or BinlogEventType.MariaDbUpdateRowsCompressed or BinlogEventType.MariaDbDeleteRowsCompressed:
                return Unsupported(header, span, "compressed ROWS event (MariaDB binlog compression)", "set log_bin_compress=OFF on the server", rowsEvent: true);

            default:
                return new UnknownEvent(header, body);
        }
    }

    private TableMapEvent ParseTableMap(BinlogEventHeader header, ReadOnlySpan<byte> body)
    {
        var postHeaderLength = PostHeaderLength(BinlogEventType.TableMap, 8);

        // Servers repeat the same TABLE_MAP in every transaction; reusing the parsed definition keeps the
        // per-transaction cost to one comparison instead of re-creating names, columns and metadata.
        var tableId = postHeaderLength == 6
            ? BinaryPrimitives.ReadUInt32LittleEndian(body)
            : BinaryPrimitives.ReadUInt32LittleEndian(body) | ((ulong)BinaryPrimitives.ReadUInt16LittleEndian(body[4..]) << 32);
        var definition = _tables.TryGetValue(tableId, out var cached) && body.SequenceEqual(cached.Definition.RawBody)
            ? cached.Definition
            : TableDefinition.Parse(body, postHeaderLength, FormatDescription?.IsMariaDb ?? false);
        var tableMap = new TableMapEvent(header, definition);
        _tables[definition.TableId] = tableMap;
        return tableMap;
    }

    private TableMapEvent? FindTable(ulong tableId) => _tables.TryGetValue(tableId, out var table) ? table : null;

    private UnsupportedEvent Unsupported(BinlogEventHeader header, ReadOnlySpan<byte> body, string feature, string remedy, bool rowsEvent)
    {
        TableMapEvent? table = null;
        if (rowsEvent && UnsupportedEvent.TryReadTableId(body) is { } tableId)
        {
            table = FindTable(tableId);
        }

        return new UnsupportedEvent(header, feature, remedy, table);
    }

    private int PostHeaderLength(BinlogEventType type, int fallback)
    {
        var length = FormatDescription?.GetPostHeaderLength(type) ?? 0;
        return length > 0 ? length : fallback;
    }

    private void PruneTables()
    {
        if (_tables.Count > MaxCachedTables)
        {
            _tables.Clear();
        }
    }
}
