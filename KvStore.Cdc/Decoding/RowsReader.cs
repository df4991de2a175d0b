using System.Buffers;
using KvStore.Cdc.Events;

namespace KvStore.Cdc.Decoding;

/// <summary>
/// Cursor over the rows of a <see cref="RowsEvent"/>. Use with <c>foreach</c> (which disposes it); each
/// <see cref="Current"/> is valid until the next <see cref="MoveNext"/>. Per image, one pass over the
/// present columns records where each value starts and how long it is in a pooled buffer, so
/// reading a column is an index lookup plus a type-specific decode, with no allocation.
/// </summary>
internal ref struct RowsReader
{
    // Per column two ints: start offset in the row data (or a marker below) and length.
    private const int NotPresent = -1;
    private const int Null = -2;

    private readonly RowsEvent _event;
    private readonly ReadOnlySpan<byte> _data;
    private int _position;
    private int[]? _layout;
    private RowChange _current;

    internal RowsReader(RowsEvent rowsEvent)
    {
        _event = rowsEvent;
        _data = rowsEvent.RowData.Span;
        _position = 0;
        _layout = null;
        _current = default;
    }

    /// <summary>The current row.</summary>
    public readonly RowChange Current => _current;

    /// <summary>Enables <c>foreach</c>.</summary>
    public readonly RowsReader GetEnumerator() => this;

    /// <summary>Decodes the layout of the next row's image(s); false at the end of the event.</summary>
    public bool MoveNext()
    {
        if (_position >= _data.Length)
        {
            _current = default;
            return false;
        }

        var columnCount = _event.ColumnCount;
        _layout ??= ArrayPool<int>.Shared.Rent(Math.Max(1, columnCount * 4));
        var layout = _layout.AsSpan(0, columnCount * 4);
        var beforeLayout = layout[..(columnCount * 2)];
        var afterLayout = layout[(columnCount * 2)..];
        var table = _event.TableMap;

        RowImage before = default;
        RowImage after = default;
        switch (_event.Kind)
        {
            case RowsEventKind.Insert:
                ReadImage(_event.AfterColumns.Span, _event.AfterColumnCount, afterLayout);
                after = new RowImage(_data, afterLayout, table, columnCount);
                break;
            case RowsEventKind.Delete:
                ReadImage(_event.BeforeColumns.Span, _event.BeforeColumnCount, beforeLayout);
                before = new RowImage(_data, beforeLayout, table, columnCount);
                break;
            default:
                ReadImage(_event.BeforeColumns.Span, _event.BeforeColumnCount, beforeLayout);
                before = new RowImage(_data, beforeLayout, table, columnCount);
                ReadImage(_event.AfterColumns.Span, _event.AfterColumnCount, afterLayout);
                after = new RowImage(_data, afterLayout, table, columnCount);
                break;
        }

        _current = new RowChange(_event.Kind, before, after);
        return true;
    }

    /// <summary>Returns the pooled layout buffer.</summary>
    public void Dispose()
    {
        if (_layout is { } layout)
        {
            _layout = null;
            ArrayPool<int>.Shared.Return(layout);
        }
    }

    /// <summary>
    /// Reads one image at <see cref="_position"/>: a NULL bitmap with one bit per *present* column, then the
    /// values of present non-NULL columns in column order.
    /// </summary>
    private void ReadImage(ReadOnlySpan<byte> presentColumns, int presentCount, Span<int> layout)
    {
        var nullBitmapLength = (presentCount + 7) / 8;
        if (_data.Length - _position < nullBitmapLength)
        {
            throw Truncated("a NULL bitmap");
        }

        var nullBitmap = _data.Slice(_position, nullBitmapLength);
        var position = _position + nullBitmapLength;
        var nullIndex = 0;
        var columns = _event.TableMap.Definition.Columns;
        for (var i = 0; i < _event.ColumnCount; i++)
        {
            if ((presentColumns[i >> 3] & (1 << (i & 7))) == 0)
            {
                layout[2 * i] = NotPresent;
                continue;
            }

            // MariaDB sets the unused padding bits to 1; they are never read because only present columns count.
            var isNull = (nullBitmap[nullIndex >> 3] & (1 << (nullIndex & 7))) != 0;
            nullIndex++;
            if (isNull)
            {
                layout[2 * i] = Null;
                continue;
            }

            var column = columns[i];
            var remaining = _data[position..];
            int length;
            try
            {
                length = column.Decoder.GetLength(remaining, column);
            }
            catch (BinlogFormatException ex) when (ex.Code == BinlogErrorCode.Malformed)
            {
                throw new BinlogFormatException(ex.Code, $"{_event.Describe()}: {ex.Message}", ex);
            }

            if (length > remaining.Length)
            {
                throw Truncated($"the value of {column.QualifiedName} ({length} bytes)");
            }

            layout[2 * i] = position;
            layout[(2 * i) + 1] = length;
            position += length;
        }

        _position = position;
    }

    private readonly BinlogFormatException Truncated(string what) =>
        new($"{_event.Describe()}: the row data ends inside {what} at offset {_position}.");
}

/// <summary>One row of a ROWS event: the before image (update, delete) and/or the after image (insert, update).</summary>
internal readonly ref struct RowChange
{
    internal RowChange(RowsEventKind kind, RowImage before, RowImage after)
    {
        Kind = kind;
        Before = before;
        After = after;
    }

    /// <summary>Insert, update or delete.</summary>
    public RowsEventKind Kind { get; }

    /// <summary>The row before the change; <see cref="RowImage.Exists"/> is false for inserts.</summary>
    public RowImage Before { get; }

    /// <summary>The row after the change; <see cref="RowImage.Exists"/> is false for deletes.</summary>
    public RowImage After { get; }
}

/// <summary>
/// One row image. Columns are addressed by ordinal (resolve names once per table with
/// <see cref="TableMapEvent.IndexOf"/>). A column can be absent (MINIMAL/NOBLOB images: the value is
/// unknown, not NULL), NULL, or hold a value read by the typed getters.
/// </summary>
internal readonly ref struct RowImage
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly ReadOnlySpan<int> _layout;
    private readonly TableMapEvent? _table;

    internal RowImage(ReadOnlySpan<byte> data, ReadOnlySpan<int> layout, TableMapEvent table, int columnCount)
    {
        _data = data;
        _layout = layout;
        _table = table;
        ColumnCount = columnCount;
    }

    /// <summary>False for the missing image of an insert (before) or delete (after).</summary>
    public bool Exists => _table is not null;

    /// <summary>Number of columns (present or not).</summary>
    public int ColumnCount { get; }

    /// <summary>The table the row belongs to.</summary>
    public TableMapEvent Table => _table ?? throw new InvalidOperationException("This row image does not exist (before image of an insert or after image of a delete).");

    /// <summary>Whether the image holds the column at all (with FULL row images every column is present).</summary>
    public bool IsPresent(int ordinal) => Start(ordinal) != -1;

    /// <summary>True when the column is present and SQL NULL; false for absent columns (check <see cref="IsPresent"/>).</summary>
    public bool IsNull(int ordinal) => Start(ordinal) == -2;

    /// <summary>Integer types, YEAR, ENUM index, SET mask, BIT, TIMESTAMP (Unix seconds). Throws <see cref="OverflowException"/> for unsigned values above <see cref="long.MaxValue"/>.</summary>
    public long GetInt64(int ordinal) => Column(ordinal).Decoder.GetInt64(Value(ordinal), Column(ordinal));

    /// <summary>Unsigned view of the integer types, ENUM, SET and BIT.</summary>
    public ulong GetUInt64(int ordinal) => Column(ordinal).Decoder.GetUInt64(Value(ordinal), Column(ordinal));

    /// <summary>Integer types as <see cref="int"/> (checked).</summary>
    public int GetInt32(int ordinal) => checked((int)GetInt64(ordinal));

    /// <summary>FLOAT, DOUBLE, and (converted) integer and DECIMAL columns.</summary>
    public double GetDouble(int ordinal) => Column(ordinal).Decoder.GetDouble(Value(ordinal), Column(ordinal));

    /// <summary>DECIMAL and integer columns.</summary>
    public decimal GetDecimal(int ordinal) => Column(ordinal).Decoder.GetDecimal(Value(ordinal), Column(ordinal));

    /// <summary>DATETIME/DATE as wall-clock (<see cref="DateTimeKind.Unspecified"/>), TIMESTAMP as UTC.</summary>
    public DateTime GetDateTime(int ordinal) => Column(ordinal).Decoder.GetDateTime(Value(ordinal), Column(ordinal));

    /// <summary>TIMESTAMP as a UTC instant.</summary>
    public DateTimeOffset GetDateTimeOffset(int ordinal) => Column(ordinal).Decoder.GetDateTimeOffset(Value(ordinal), Column(ordinal));

    /// <summary>TIME (may be negative or above 24 hours).</summary>
    public TimeSpan GetTimeSpan(int ordinal) => Column(ordinal).Decoder.GetTimeSpan(Value(ordinal), Column(ordinal));

    /// <summary>
    /// The value bytes without length prefix: the content of string, BLOB, JSON (binary form) and GEOMETRY
    /// columns, the raw wire bytes for other types. Valid as long as the event buffer.
    /// </summary>
    public ReadOnlySpan<byte> GetBytes(int ordinal) => Column(ordinal).Decoder.GetPayload(Value(ordinal), Column(ordinal));

    /// <summary>
    /// Text columns decoded by their charset (UTF-8 when none was logged); MySQL JSON as JSON text; ENUM/SET as
    /// member names; other types in MySQL's text form. Throws for binary columns.
    /// </summary>
    public string GetString(int ordinal) => Column(ordinal).Decoder.GetString(Value(ordinal), Column(ordinal));

    /// <summary>The value boxed: null for SQL NULL, <see cref="MissingColumn.Value"/> when absent (diagnostics only).</summary>
    public object? GetValue(int ordinal)
    {
        var start = Start(ordinal);
        return start switch
        {
            -1 => MissingColumn.Value,
            -2 => null,
            _ => Column(ordinal).Decoder.GetValue(_data.Slice(start, _layout[(2 * ordinal) + 1]), Column(ordinal)),
        };
    }

    /// <summary>All values boxed, by ordinal (see <see cref="GetValue"/>).</summary>
    public object?[] ToArray()
    {
        var values = new object?[ColumnCount];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = GetValue(i);
        }

        return values;
    }

    /// <summary>The raw value bytes including any length prefix.</summary>
    internal ReadOnlySpan<byte> GetRawValue(int ordinal) => Value(ordinal);

    private TableColumn Column(int ordinal) => Table.Definition.Columns[ordinal];

    private int Start(int ordinal)
    {
        if (_table is null)
        {
            throw new InvalidOperationException("This row image does not exist (before image of an insert or after image of a delete).");
        }

        if ((uint)ordinal >= (uint)ColumnCount)
        {
            throw new ArgumentOutOfRangeException(nameof(ordinal), ordinal, $"The row has {ColumnCount} columns.");
        }

        return _layout[2 * ordinal];
    }

    private ReadOnlySpan<byte> Value(int ordinal)
    {
        var start = Start(ordinal);
        return start >= 0
            ? _data.Slice(start, _layout[(2 * ordinal) + 1])
            : throw new InvalidOperationException(start == -1
                ? $"Column {Column(ordinal).QualifiedName} is not present in this row image (binlog_row_image is not FULL); its value is unknown."
                : $"Column {Column(ordinal).QualifiedName} is NULL; check IsNull first.");
    }
}
