using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace KvStore.Cdc.Events;

/// <summary>MySQL GTID_LOG_EVENT (33) and ANONYMOUS_GTID_LOG_EVENT (34): start of a transaction, with its GTID.</summary>
internal sealed class MySqlGtidEvent : BinlogEvent
{
    internal MySqlGtidEvent(BinlogEventHeader header, byte flags, Guid sourceId, long transactionNumber, long? lastCommitted, long? sequenceNumber)
        : base(header)
    {
        Flags = flags;
        SourceId = sourceId;
        TransactionNumber = transactionNumber;
        LastCommitted = lastCommitted;
        SequenceNumber = sequenceNumber;
    }

    /// <summary>True for ANONYMOUS_GTID (gtid_mode=OFF): no GTID, only the logical clock.</summary>
    public bool IsAnonymous => Type == BinlogEventType.MySqlAnonymousGtid;

    /// <summary>Bit 0: the transaction may have changed non-transactional tables.</summary>
    public byte Flags { get; }

    /// <summary>The source server UUID (SID).</summary>
    public Guid SourceId { get; }

    /// <summary>The transaction number (GNO); 0 for anonymous transactions.</summary>
    public long TransactionNumber { get; }

    /// <summary>Logical clock: the sequence number this transaction depends on (5.7+), if logged.</summary>
    public long? LastCommitted { get; }

    /// <summary>Logical clock: this transaction's sequence number in the file (5.7+), if logged.</summary>
    public long? SequenceNumber { get; }

    /// <summary><c>uuid:gno</c>.</summary>
    public string Gtid => string.Create(CultureInfo.InvariantCulture, $"{SourceId}:{TransactionNumber}");

    internal static MySqlGtidEvent Parse(BinlogEventHeader header, ReadOnlySpan<byte> body)
    {
        var reader = new BodyReader(body);
        var flags = reader.ReadByte();

        // The SID is in text order (big-endian), unlike the Guid(byte[]) constructor's layout.
        var sourceId = new Guid(reader.ReadBytes(16), bigEndian: true);
        var gno = (long)reader.ReadUInt64();
        long? lastCommitted = null;
        long? sequence = null;
        const byte LogicalTimestampType = 2;
        if (reader.Remaining >= 17 && reader.ReadByte() == LogicalTimestampType)
        {
            lastCommitted = (long)reader.ReadUInt64();
            sequence = (long)reader.ReadUInt64();
        }

        // MySQL 8 appends commit timestamps, transaction length and server versions; not needed here.
        return new MySqlGtidEvent(header, flags, sourceId, gno, lastCommitted, sequence);
    }

    /// <inheritdoc/>
    public override string ToString() => $"{(IsAnonymous ? "ANONYMOUS_GTID" : "GTID " + Gtid)} (log_pos {Header.LogPosition})";
}

/// <summary>A GTID interval <c>[Start, End)</c> as stored in PREVIOUS_GTIDS (the end is exclusive).</summary>
internal readonly record struct MySqlGtidInterval(long Start, long End);

/// <summary>All intervals of one source UUID in a MySQL GTID set.</summary>
internal sealed record MySqlGtidSetEntry(Guid SourceId, IReadOnlyList<MySqlGtidInterval> Intervals);

/// <summary>MySQL PREVIOUS_GTIDS_LOG_EVENT (35): the GTIDs executed before this file. Informational.</summary>
internal sealed class PreviousGtidsEvent : BinlogEvent
{
    internal PreviousGtidsEvent(BinlogEventHeader header, IReadOnlyList<MySqlGtidSetEntry>? entries)
        : base(header)
    {
        Entries = entries;
    }

    /// <summary>The GTID set, or null when it uses the tagged-GTID encoding (MySQL 8.4+), which is not decoded.</summary>
    public IReadOnlyList<MySqlGtidSetEntry>? Entries { get; }

    /// <summary>Text form <c>uuid:1-5:7,uuid2:1-3</c> (inclusive ends), empty when not decoded.</summary>
    public string GtidSet
    {
        get
        {
            if (Entries is null)
            {
                return string.Empty;
            }

            var text = new StringBuilder();
            foreach (var entry in Entries)
            {
                if (text.Length > 0)
                {
                    text.Append(',');
                }

                text.Append(entry.SourceId);
                foreach (var interval in entry.Intervals)
                {
                    text.Append(CultureInfo.InvariantCulture, $":{interval.Start}");
                    if (interval.End - 1 != interval.Start)
                    {
                        text.Append(CultureInfo.InvariantCulture, $"-{interval.End - 1}");
                    }
                }
            }

            return text.ToString();
        }
    }

    internal static PreviousGtidsEvent Parse(BinlogEventHeader header, ReadOnlySpan<byte> body)
    {
        var reader = new BodyReader(body);
        var count = reader.ReadUInt64();

        // A non-zero top byte marks the tagged encoding of MySQL 8.4+.
        if ((count >> 56) != 0)
        {
            return new PreviousGtidsEvent(header, null);
        }

        if (count > (ulong)(reader.Remaining / 24))
        {
            throw new BinlogFormatException($"PREVIOUS_GTIDS claims {count} source ids but has room for fewer.");
        }

        var entries = new List<MySqlGtidSetEntry>((int)count);
        for (var i = 0UL; i < count; i++)
        {
            var sourceId = new Guid(reader.ReadBytes(16), bigEndian: true);
            var intervalCount = reader.ReadUInt64();
            if (intervalCount > (ulong)(reader.Remaining / 16))
            {
                throw new BinlogFormatException($"PREVIOUS_GTIDS claims {intervalCount} intervals but has room for fewer.");
            }

            var intervals = new MySqlGtidInterval[intervalCount];
            for (var j = 0; j < intervals.Length; j++)
            {
                intervals[j] = new MySqlGtidInterval((long)reader.ReadUInt64(), (long)reader.ReadUInt64());
            }

            entries.Add(new MySqlGtidSetEntry(sourceId, intervals));
        }

        return new PreviousGtidsEvent(header, entries);
    }
}

/// <summary>MySQL ROWS_QUERY_LOG_EVENT (29): the statement text before its rows events (<c>binlog_rows_query_log_events=ON</c>).</summary>
internal sealed class RowsQueryEvent : BinlogEvent
{
    internal RowsQueryEvent(BinlogEventHeader header, string sql)
        : base(header)
    {
        Sql = sql;
    }

    /// <summary>The statement text.</summary>
    public string Sql { get; }

    internal static RowsQueryEvent Parse(BinlogEventHeader header, ReadOnlySpan<byte> body) =>
        new(header, body.IsEmpty ? string.Empty : Encoding.UTF8.GetString(body[1..]));
}

/// <summary>
/// HEARTBEAT_LOG_EVENT (27) and HEARTBEAT_LOG_EVENT_V2 (41): sent while the source is idle. They reset the read
/// timeout and never move the replication position.
/// </summary>
internal sealed class HeartbeatEvent : BinlogEvent
{
    internal HeartbeatEvent(BinlogEventHeader header, string logFileName, ulong position)
        : base(header)
    {
        LogFileName = logFileName;
        Position = position;
    }

    /// <summary>The source's current binlog file.</summary>
    public string LogFileName { get; }

    /// <summary>The source's current position (v1: the header's log_pos; v2: the full 64-bit value).</summary>
    public ulong Position { get; }

    internal static HeartbeatEvent Parse(BinlogEventHeader header, ReadOnlySpan<byte> body)
    {
        if (header.Type == BinlogEventType.Heartbeat)
        {
            return new HeartbeatEvent(header, Encoding.UTF8.GetString(body), header.LogPosition);
        }

        // v2: TLV fields (1 = file name, 2 = position as a packed int), 0 ends the list.
        const byte End = 0, FileName = 1, Position = 2;
        var reader = new BodyReader(body);
        var fileName = string.Empty;
        var position = (ulong)header.LogPosition;
        while (!reader.IsEmpty)
        {
            var field = reader.ReadByte();
            if (field == End)
            {
                break;
            }

            var value = reader.ReadPackedBytes();
            if (field == FileName)
            {
                fileName = Encoding.UTF8.GetString(value);
            }
            else if (field == Position)
            {
                var valueReader = new BodyReader(value);
                position = valueReader.ReadPackedInt();
            }
        }

        return new HeartbeatEvent(header, fileName, position);
    }
}

/// <summary>INCIDENT_EVENT (26): the source lost events (e.g. a failed non-transactional write); a CDC consumer must treat the stream as broken.</summary>
internal sealed class IncidentEvent : BinlogEvent
{
    internal IncidentEvent(BinlogEventHeader header, ushort incident, string message)
        : base(header)
    {
        Incident = incident;
        Message = message;
    }

    /// <summary>Incident code (1 = LOST_EVENTS).</summary>
    public ushort Incident { get; }

    /// <summary>The server's description.</summary>
    public string Message { get; }

    internal static IncidentEvent Parse(BinlogEventHeader header, ReadOnlySpan<byte> body)
    {
        var reader = new BodyReader(body);
        var incident = reader.ReadUInt16();
        var message = reader.IsEmpty ? string.Empty : reader.ReadUtf8(Math.Min((int)reader.ReadByte(), reader.Remaining));
        return new IncidentEvent(header, incident, message);
    }
}

/// <summary>An event type this library does not decode (INTVAR, RAND, USER_VAR, STOP, XA_PREPARE, ...); skipped by length.</summary>
internal sealed class UnknownEvent : BinlogEvent
{
    internal UnknownEvent(BinlogEventHeader header, ReadOnlyMemory<byte> body)
        : base(header)
    {
        Body = body;
    }

    /// <summary>The event body (checksum excluded), a slice of the parser's input.</summary>
    public ReadOnlyMemory<byte> Body { get; }
}

/// <summary>
/// An event that changes the encoding in a way this library does not decode (compressed transactions, partial
/// JSON updates, MariaDB compressed events, tagged GTIDs). Parsing never fails on it, because it may concern
/// tables the consumer ignores; a consumer that needs its content throws <see cref="CreateException"/>.
/// </summary>
internal sealed class UnsupportedEvent : BinlogEvent
{
    internal UnsupportedEvent(BinlogEventHeader header, string feature, string remedy, TableMapEvent? tableMap)
        : base(header)
    {
        Feature = feature;
        Remedy = remedy;
        TableMap = tableMap;
    }

    /// <summary>What the event is, e.g. "TRANSACTION_PAYLOAD_EVENT (binlog transaction compression)".</summary>
    public string Feature { get; }

    /// <summary>The server setting that avoids it, e.g. "SET GLOBAL binlog_transaction_compression=OFF".</summary>
    public string Remedy { get; }

    /// <summary>For row-level events, the table they touch (when its TABLE_MAP is known); null when it cannot be known.</summary>
    public TableMapEvent? TableMap { get; }

    /// <summary>The error to raise when the event matters to the consumer.</summary>
    public BinlogFormatException CreateException() => new(
        BinlogErrorCode.UnsupportedFeature,
        $"{Feature} at log_pos {Header.LogPosition}{(TableMap is null ? string.Empty : $" on {TableMap.DatabaseName}.{TableMap.TableName}")} is not supported; {Remedy}.");

    /// <inheritdoc/>
    public override string ToString() => $"{Type} unsupported: {Feature} (log_pos {Header.LogPosition})";

    internal static ulong? TryReadTableId(ReadOnlySpan<byte> body) =>
        body.Length >= 6 ? BinaryPrimitives.ReadUInt32LittleEndian(body) | ((ulong)BinaryPrimitives.ReadUInt16LittleEndian(body[4..]) << 32) : null;
}
