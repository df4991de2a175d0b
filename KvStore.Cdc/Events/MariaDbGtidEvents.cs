using System.Text;
using KvStore.Cdc.Protocol;

namespace KvStore.Cdc.Events;

/// <summary>MariaDB GTID_EVENT (162): starts an event group (transaction or DDL) and names its GTID.</summary>
internal sealed class MariaDbGtidEvent : BinlogEvent
{
    /// <summary>FL_STANDALONE: no XID/COMMIT follows (DDL, or a statement that commits itself).</summary>
    public const byte StandaloneFlag = 0x01;

    /// <summary>FL_GROUP_COMMIT_ID: a commit id follows the flags.</summary>
    public const byte GroupCommitIdFlag = 0x02;

    /// <summary>FL_TRANSACTIONAL: the group only touches transactional tables.</summary>
    public const byte TransactionalFlag = 0x04;

    /// <summary>FL_ALLOW_PARALLEL.</summary>
    public const byte AllowParallelFlag = 0x08;

    /// <summary>FL_WAITED.</summary>
    public const byte WaitedFlag = 0x10;

    /// <summary>FL_DDL.</summary>
    public const byte DdlFlag = 0x20;

    /// <summary>FL_PREPARED_XA: the group is an XA PREPARE.</summary>
    public const byte PreparedXaFlag = 0x40;

    /// <summary>FL_COMPLETED_XA: the group is an XA COMMIT/ROLLBACK of a prepared transaction.</summary>
    public const byte CompletedXaFlag = 0x80;

    internal MariaDbGtidEvent(BinlogEventHeader header, ulong sequenceNumber, uint domainId, byte flags, ulong commitId)
        : base(header)
    {
        Gtid = new MariaDbGtid(domainId, header.ServerId, sequenceNumber);
        Flags = flags;
        CommitId = commitId;
    }

    /// <summary>The GTID (the server id comes from the event header).</summary>
    public MariaDbGtid Gtid { get; }

    /// <summary>FL_* flags.</summary>
    public byte Flags { get; }

    /// <summary>Group commit id when <see cref="GroupCommitIdFlag"/> is set, else 0.</summary>
    public ulong CommitId { get; }

    /// <summary>No XID/COMMIT ends this group: the group ends with its single statement (typically DDL).</summary>
    public bool IsStandalone => (Flags & StandaloneFlag) != 0;

    /// <summary>The group is DDL.</summary>
    public bool IsDdl => (Flags & DdlFlag) != 0;

    /// <summary>The group only touches transactional tables.</summary>
    public bool IsTransactional => (Flags & TransactionalFlag) != 0;

    internal static MariaDbGtidEvent Parse(BinlogEventHeader header, ReadOnlySpan<byte> body)
    {
        var reader = new BodyReader(body);
        var sequence = reader.ReadUInt64();
        var domain = reader.ReadUInt32();
        var flags = reader.ReadByte();
        var commitId = (flags & GroupCommitIdFlag) != 0 && reader.Remaining >= 8 ? reader.ReadUInt64() : 0;

        // XA ids, flags2 and later extra fields follow; nothing here needs them, so the tail is ignored.
        return new MariaDbGtidEvent(header, sequence, domain, flags, commitId);
    }

    /// <inheritdoc/>
    public override string ToString() => $"GTID {Gtid} (log_pos {Header.LogPosition})";
}

/// <summary>
/// MariaDB GTID_LIST_EVENT (163): the GTID state at the start of a binlog file (and, artificial, at the
/// resume point of a GTID dump).
/// </summary>
internal sealed class MariaDbGtidListEvent : BinlogEvent
{
    internal MariaDbGtidListEvent(BinlogEventHeader header, IReadOnlyList<MariaDbGtid> gtids, byte flags)
        : base(header)
    {
        Gtids = gtids;
        Flags = flags;
    }

    /// <summary>Last GTID per (domain, server) pair.</summary>
    public IReadOnlyList<MariaDbGtid> Gtids { get; }

    /// <summary>The top 4 bits of the count field.</summary>
    public byte Flags { get; }

    internal static MariaDbGtidListEvent Parse(BinlogEventHeader header, ReadOnlySpan<byte> body)
    {
        var reader = new BodyReader(body);
        var countAndFlags = reader.ReadUInt32();
        var count = (int)(countAndFlags & 0x0FFF_FFFF);
        if (count > reader.Remaining / 16)
        {
            throw new BinlogFormatException($"GTID_LIST claims {count} entries but has room for {reader.Remaining / 16}.");
        }

        var gtids = new MariaDbGtid[count];
        for (var i = 0; i < count; i++)
        {
            var domain = reader.ReadUInt32();
            var server = reader.ReadUInt32();
            gtids[i] = new MariaDbGtid(domain, server, reader.ReadUInt64());
        }

        return new MariaDbGtidListEvent(header, gtids, (byte)(countAndFlags >> 28));
    }

    /// <inheritdoc/>
    public override string ToString() => $"GTID_LIST [{string.Join(",", Gtids)}] (log_pos {Header.LogPosition})";
}

/// <summary>MariaDB BINLOG_CHECKPOINT_EVENT (161): the oldest binlog file still needed for crash recovery. Informational.</summary>
internal sealed class BinlogCheckpointEvent : BinlogEvent
{
    internal BinlogCheckpointEvent(BinlogEventHeader header, string logFileName)
        : base(header)
    {
        LogFileName = logFileName;
    }

    /// <summary>The binlog file name.</summary>
    public string LogFileName { get; }

    internal static BinlogCheckpointEvent Parse(BinlogEventHeader header, ReadOnlySpan<byte> body)
    {
        var reader = new BodyReader(body);
        var length = (int)Math.Min(reader.ReadUInt32(), int.MaxValue);
        return new BinlogCheckpointEvent(header, reader.ReadUtf8(length));
    }
}

/// <summary>
/// MariaDB ANNOTATE_ROWS_EVENT (160): the SQL text of the statement whose rows events follow. About half of a
/// typical MariaDB binlog's bytes, and nothing on the change stream reads it, so the text is decoded only when
/// asked for. Like a ROWS event it points into the event buffer given to the parser.
/// </summary>
internal sealed class AnnotateRowsEvent : BinlogEvent
{
    private string? _sql;

    internal AnnotateRowsEvent(BinlogEventHeader header, ReadOnlyMemory<byte> sqlUtf8)
        : base(header)
    {
        SqlUtf8 = sqlUtf8;
    }

    /// <summary>The statement text as logged (UTF-8), a slice of the event buffer: valid as long as that buffer is.</summary>
    public ReadOnlyMemory<byte> SqlUtf8 { get; }

    /// <summary>The statement text, decoded on first access (so only while the event buffer is unchanged).</summary>
    public string Sql => _sql ??= Encoding.UTF8.GetString(SqlUtf8.Span);
}
