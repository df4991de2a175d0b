namespace KvStore.Cdc.Protocol;

/// <summary>How a <see cref="BinlogStartPosition"/> says where to start.</summary>
internal enum BinlogStartKind
{
    /// <summary>A binlog file name and byte offset (both flavours).</summary>
    FilePosition,

    /// <summary>A MariaDB GTID position: start after the given GTID of each domain.</summary>
    MariaDbGtid,

    /// <summary>A MySQL GTID set: send every transaction not in the set (COM_BINLOG_DUMP_GTID).</summary>
    MySqlGtid,

    /// <summary>The current end of the binlog, read from the server when connecting.</summary>
    Now,
}

/// <summary>Where a dump starts. Immutable.</summary>
internal sealed class BinlogStartPosition
{
    private BinlogStartPosition(BinlogStartKind kind, BinlogPosition? filePosition, MariaDbGtidPosition? mariaDbGtid, MySqlGtidSet? mySqlGtid)
    {
        Kind = kind;
        FilePosition = filePosition;
        MariaDbGtid = mariaDbGtid;
        MySqlGtid = mySqlGtid;
    }

    /// <summary>The end of the binlog at connect time.</summary>
    public static BinlogStartPosition Now { get; } = new(BinlogStartKind.Now, null, null, null);

    public BinlogStartKind Kind { get; }

    /// <summary>Set for <see cref="BinlogStartKind.FilePosition"/>.</summary>
    public BinlogPosition? FilePosition { get; }

    /// <summary>Set for <see cref="BinlogStartKind.MariaDbGtid"/>.</summary>
    public MariaDbGtidPosition? MariaDbGtid { get; }

    /// <summary>Set for <see cref="BinlogStartKind.MySqlGtid"/> (a private copy).</summary>
    public MySqlGtidSet? MySqlGtid { get; }

    /// <summary>Start at <paramref name="position"/> (4 = first event) of <paramref name="fileName"/>.</summary>
    public static BinlogStartPosition FromFile(string fileName, long position = 4)
    {
        ArgumentException.ThrowIfNullOrEmpty(fileName);
        ArgumentOutOfRangeException.ThrowIfLessThan(position, 4);
        return new(BinlogStartKind.FilePosition, new BinlogPosition(fileName, position), null, null);
    }

    public static BinlogStartPosition FromPosition(BinlogPosition position) => FromFile(position.FileName, position.Position);

    /// <summary>Start after the given GTIDs (MariaDB; the last applied GTID per domain).</summary>
    public static BinlogStartPosition FromMariaDbGtid(MariaDbGtidPosition position)
    {
        ArgumentNullException.ThrowIfNull(position);
        return new(BinlogStartKind.MariaDbGtid, null, position, null);
    }

    public static BinlogStartPosition FromMariaDbGtid(string position) => FromMariaDbGtid(MariaDbGtidPosition.Parse(position));

    /// <summary>Start with the first transaction not in <paramref name="executed"/> (MySQL).</summary>
    public static BinlogStartPosition FromMySqlGtidSet(MySqlGtidSet executed)
    {
        ArgumentNullException.ThrowIfNull(executed);
        return new(BinlogStartKind.MySqlGtid, null, null, executed.Clone());
    }

    public static BinlogStartPosition FromMySqlGtidSet(string executed) => FromMySqlGtidSet(MySqlGtidSet.Parse(executed));

    public override string ToString() => Kind switch
    {
        BinlogStartKind.FilePosition => FilePosition!.Value.ToString(),
        BinlogStartKind.MariaDbGtid => $"GTID '{MariaDbGtid}'",
        BinlogStartKind.MySqlGtid => $"GTID set '{MySqlGtid}'",
        _ => "the current end of the binlog",
    };
}
