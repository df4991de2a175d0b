using KvStore.Cdc.Decoding;

namespace KvStore.Cdc.Events;

/// <summary>What a ROWS event does to each of its rows.</summary>
internal enum RowsEventKind
{
    /// <summary>WRITE_ROWS: each row has an after image.</summary>
    Insert,

    /// <summary>UPDATE_ROWS: each row has a before and an after image.</summary>
    Update,

    /// <summary>DELETE_ROWS: each row has a before image.</summary>
    Delete,
}

/// <summary>
/// WRITE/UPDATE/DELETE_ROWS, v1 (23-25, MariaDB) and v2 (30-32, MySQL). Holds the undecoded row data (a
/// slice of the event buffer passed to the parser, so it is valid only as long as that buffer is) and the
/// TABLE_MAP it refers to. Read the rows with <see cref="GetRows"/>, which decodes without per-value allocation.
/// </summary>
internal sealed class RowsEvent : BinlogEvent
{
    /// <summary>STMT_END_F: the last rows event of a statement.</summary>
    public const ushort StatementEndFlag = 0x0001;

    internal RowsEvent(
        BinlogEventHeader header,
        RowsEventKind kind,
        int version,
        ulong tableId,
        ushort flags,
        TableMapEvent tableMap,
        int columnCount,
        ReadOnlyMemory<byte> beforeColumns,
        ReadOnlyMemory<byte> afterColumns,
        ReadOnlyMemory<byte> rowData)
        : base(header)
    {
        Kind = kind;
        Version = version;
        TableId = tableId;
        Flags = flags;
        TableMap = tableMap;
        ColumnCount = columnCount;
        BeforeColumns = beforeColumns;
        AfterColumns = afterColumns;
        RowData = rowData;
        BeforeColumnCount = Count(beforeColumns.Span, columnCount);
        AfterColumnCount = Count(afterColumns.Span, columnCount);
    }

    /// <summary>Insert, update or delete.</summary>
    public RowsEventKind Kind { get; }

    /// <summary>1 for the v1 event types (MariaDB), 2 for v2 (MySQL 5.6+).</summary>
    public int Version { get; }

    /// <summary>The table id of the TABLE_MAP this event belongs to.</summary>
    public ulong TableId { get; }

    /// <summary>Event flags (<see cref="StatementEndFlag"/>, ...).</summary>
    public ushort Flags { get; }

    /// <summary>True for the last rows event of a statement.</summary>
    public bool IsStatementEnd => (Flags & StatementEndFlag) != 0;

    /// <summary>The most recent TABLE_MAP with <see cref="TableId"/>: names, types and metadata of the columns.</summary>
    public TableMapEvent TableMap { get; }

    /// <summary>Number of columns the row images are laid out for (the table's column count).</summary>
    public int ColumnCount { get; }

    /// <summary>How many columns the before image holds (0 for inserts); fewer than the table has with a MINIMAL or NOBLOB row image.</summary>
    public int BeforeColumnCount { get; }

    /// <summary>How many columns the after image holds (0 for deletes).</summary>
    public int AfterColumnCount { get; }

    /// <summary>Columns-present bitmap of before images (empty for inserts).</summary>
    internal ReadOnlyMemory<byte> BeforeColumns { get; }

    /// <summary>Columns-present bitmap of after images (empty for deletes).</summary>
    internal ReadOnlyMemory<byte> AfterColumns { get; }

    /// <summary>The row images, back to back.</summary>
    internal ReadOnlyMemory<byte> RowData { get; }

    /// <summary>
    /// A cursor over the rows: <c>foreach (var row in rowsEvent.GetRows()) { ... row.After.GetInt64(0) ... }</c>.
    /// Column offsets of each image are computed once into a pooled buffer that the enumerator returns on dispose.
    /// Throws <see cref="BinlogFormatException"/> when the table has a column type that cannot be decoded.
    /// </summary>
    public RowsReader GetRows()
    {
        if (TableMap.DecodeError is { } error)
        {
            throw new BinlogFormatException(BinlogErrorCode.UnknownColumnType, error);
        }

        return new RowsReader(this);
    }

    /// <summary>Materializes every row (boxing each value); for tests and diagnostics only.</summary>
    public IReadOnlyList<RowValues> ToRowValues()
    {
        var result = new List<RowValues>();
        foreach (var row in GetRows())
        {
            result.Add(new RowValues(
                row.Before.Exists ? row.Before.ToArray() : null,
                row.After.Exists ? row.After.ToArray() : null));
        }

        return result;
    }

    /// <summary>"WRITE_ROWS_V1 on db.table (log_pos N)", for messages.</summary>
    internal string Describe() => $"{Type} on {TableMap.DatabaseName}.{TableMap.TableName} (log_pos {Header.LogPosition})";

    /// <inheritdoc/>
    public override string ToString() => Describe();

    private static int Count(ReadOnlySpan<byte> bitmap, int columnCount)
    {
        var count = 0;
        for (var i = 0; i < columnCount && i / 8 < bitmap.Length; i++)
        {
            if ((bitmap[i / 8] & (1 << (i % 8))) != 0)
            {
                count++;
            }
        }

        return count;
    }

    internal static RowsEvent Parse(
        BinlogEventHeader header, ReadOnlyMemory<byte> body, int postHeaderLength, Func<ulong, TableMapEvent?> findTable)
    {
        var (kind, version) = header.Type switch
        {
            BinlogEventType.WriteRowsV1 => (RowsEventKind.Insert, 1),
            BinlogEventType.UpdateRowsV1 => (RowsEventKind.Update, 1),
            BinlogEventType.DeleteRowsV1 => (RowsEventKind.Delete, 1),
            BinlogEventType.WriteRowsV2 => (RowsEventKind.Insert, 2),
            BinlogEventType.UpdateRowsV2 => (RowsEventKind.Update, 2),
            _ => (RowsEventKind.Delete, 2),
        };

        var reader = new BodyReader(body.Span);
        var tableId = postHeaderLength == 6 ? reader.ReadUInt32() : reader.ReadUInt48();
        var flags = reader.ReadUInt16();
        if (version == 2)
        {
            // The extra-data length counts its own two bytes.
            var extraLength = reader.ReadUInt16();
            if (extraLength < 2)
            {
                throw new BinlogFormatException($"ROWS v2 extra data length {extraLength} is below 2.");
            }

            reader.Skip(extraLength - 2);
        }

        var columnCount = reader.ReadPackedLength();
        var bitmapLength = (columnCount + 7) / 8;
        var firstBitmapStart = reader.Position;
        reader.Skip(bitmapLength);
        var secondBitmapStart = reader.Position;
        if (kind == RowsEventKind.Update)
        {
            reader.Skip(bitmapLength);
        }

        var rowsStart = reader.Position;
        var tableMap = findTable(tableId) ?? throw new BinlogFormatException(
            BinlogErrorCode.MissingTableMap,
            $"{header.Type} (log_pos {header.LogPosition}) refers to table id {tableId}, but no TABLE_MAP with that id was seen; resume from a transaction boundary.");
        if (columnCount > tableMap.ColumnCount)
        {
            throw new BinlogFormatException(
                $"{header.Type} (log_pos {header.LogPosition}) has {columnCount} columns but the TABLE_MAP of {tableMap.DatabaseName}.{tableMap.TableName} has {tableMap.ColumnCount}.");
        }

        var first = body.Slice(firstBitmapStart, bitmapLength);
        var second = kind == RowsEventKind.Update ? body.Slice(secondBitmapStart, bitmapLength) : ReadOnlyMemory<byte>.Empty;
        return new RowsEvent(
            header,
            kind,
            version,
            tableId,
            flags,
            tableMap,
            columnCount,
            beforeColumns: kind == RowsEventKind.Insert ? ReadOnlyMemory<byte>.Empty : first,
            afterColumns: kind switch
            {
                RowsEventKind.Insert => first,
                RowsEventKind.Update => second,
                _ => ReadOnlyMemory<byte>.Empty,
            },
            rowData: body[rowsStart..]);
    }
}

/// <summary>One materialized row: column values by ordinal, <see cref="MissingColumn.Value"/> where the image lacks a column.</summary>
internal sealed record RowValues(object?[]? Before, object?[]? After);

/// <summary>Marks a column absent from a row image (MINIMAL/NOBLOB row images); distinct from SQL NULL.</summary>
internal sealed class MissingColumn
{
    private MissingColumn()
    {
    }

    /// <summary>The single instance.</summary>
    public static MissingColumn Value { get; } = new();

    /// <inheritdoc/>
    public override string ToString() => "(not present)";
}
