using KvStore.Cdc.Events;

namespace KvStore.Cdc.Decoding;

/// <summary>
/// Decodes one column type: how many TABLE_MAP metadata bytes it has and what they mean, how long a
/// value is in a row image, and how to read it. One stateless instance per type id
/// (<see cref="ColumnDecoders"/>); everything column-specific comes from the <see cref="TableColumn"/>.
/// The <c>value</c> spans passed in are exactly the bytes of one value, length prefix included.
/// </summary>
internal abstract class ColumnDecoder
{
    private readonly bool _bigEndianMetadata;

    protected ColumnDecoder(string name, int metadataSize, bool bigEndianMetadata = false)
    {
        Name = name;
        MetadataSize = metadataSize;
        _bigEndianMetadata = bigEndianMetadata;
    }

    /// <summary>SQL-ish type name for messages.</summary>
    public string Name { get; }

    /// <summary>Bytes this type takes in the TABLE_MAP metadata block (0, 1 or 2).</summary>
    public int MetadataSize { get; }

    /// <summary>The metadata bytes as one number (2-byte metadata is little-endian except STRING/ENUM/SET/DECIMAL).</summary>
    public int ReadMetadata(ReadOnlySpan<byte> bytes) => MetadataSize switch
    {
        0 => 0,
        1 => bytes[0],
        _ => _bigEndianMetadata ? (bytes[0] << 8) | bytes[1] : bytes[0] | (bytes[1] << 8),
    };

    /// <summary>
    /// Interprets <paramref name="metadata"/>: the real type, the type-specific length (see
    /// <see cref="TableColumn.Length"/>) and the decoder to use, which differs only when a STRING column
    /// turns out to be ENUM or SET.
    /// </summary>
    public virtual ColumnDecoder Resolve(ColumnType wireType, int metadata, out ColumnType type, out int length, out int scale)
    {
        type = wireType;
        length = metadata;
        scale = 0;
        return this;
    }

    /// <summary>Length in bytes of the value starting at <paramref name="data"/> (the rest of the row data).</summary>
    public abstract int GetLength(ReadOnlySpan<byte> data, TableColumn column);

    /// <summary>The value bytes without any length prefix (raw wire bytes for fixed-size types).</summary>
    public virtual ReadOnlySpan<byte> GetPayload(ReadOnlySpan<byte> value, TableColumn column) => value;

    public virtual long GetInt64(ReadOnlySpan<byte> value, TableColumn column) => throw Cannot(column, "Int64");

    public virtual ulong GetUInt64(ReadOnlySpan<byte> value, TableColumn column) => throw Cannot(column, "UInt64");

    public virtual double GetDouble(ReadOnlySpan<byte> value, TableColumn column) => throw Cannot(column, "Double");

    public virtual decimal GetDecimal(ReadOnlySpan<byte> value, TableColumn column) => throw Cannot(column, "Decimal");

    public virtual DateTime GetDateTime(ReadOnlySpan<byte> value, TableColumn column) => throw Cannot(column, "DateTime");

    public virtual DateTimeOffset GetDateTimeOffset(ReadOnlySpan<byte> value, TableColumn column) => throw Cannot(column, "DateTimeOffset");

    public virtual TimeSpan GetTimeSpan(ReadOnlySpan<byte> value, TableColumn column) => throw Cannot(column, "TimeSpan");

    /// <summary>Text columns decoded by charset; other types in MySQL's text form (JSON as JSON text).</summary>
    public abstract string GetString(ReadOnlySpan<byte> value, TableColumn column);

    /// <summary>The value as a CLR object (diagnostics and tests; the hot path uses the typed getters).</summary>
    public abstract object GetValue(ReadOnlySpan<byte> value, TableColumn column);

    protected static InvalidCastException Cannot(TableColumn column, string target) =>
        new($"Column {column.QualifiedName} is {column.Decoder.Name}; it cannot be read as {target}.");

    /// <summary>Reads a little-endian length prefix of <paramref name="size"/> bytes and returns prefix + payload length.</summary>
    protected static int PrefixedLength(ReadOnlySpan<byte> data, int size, TableColumn column)
    {
        if (data.Length < size)
        {
            throw new BinlogFormatException($"Row data ends inside the length prefix of {column.QualifiedName}.");
        }

        uint length = size switch
        {
            1 => data[0],
            2 => (uint)(data[0] | (data[1] << 8)),
            3 => (uint)(data[0] | (data[1] << 8) | (data[2] << 16)),
            4 => (uint)(data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24)),
            _ => throw new BinlogFormatException($"Invalid length-prefix size {size} for {column.QualifiedName}."),
        };
        if (length > int.MaxValue - size)
        {
            throw new BinlogFormatException($"Value length {length} of {column.QualifiedName} is out of range.");
        }

        return size + (int)length;
    }
}
