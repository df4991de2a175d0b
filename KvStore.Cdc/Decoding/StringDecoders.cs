using System.Buffers.Binary;
using System.Globalization;
using KvStore.Cdc.Events;

namespace KvStore.Cdc.Decoding;

/// <summary>Shared text/binary handling for the length-prefixed string types.</summary>
internal abstract class PrefixedBytesDecoder : ColumnDecoder
{
    private readonly bool _textWhenCharsetUnknown;

    protected PrefixedBytesDecoder(string name, int metadataSize, bool bigEndianMetadata, bool textWhenCharsetUnknown)
        : base(name, metadataSize, bigEndianMetadata)
    {
        _textWhenCharsetUnknown = textWhenCharsetUnknown;
    }

    /// <summary>Types whose metadata is the length-prefix size accept only 1 to 4.</summary>
    protected static ColumnDecoder CheckPrefixSize(ColumnDecoder decoder, int metadata) => metadata is >= 1 and <= 4
        ? decoder
        : throw new BinlogFormatException($"{decoder.Name} length-prefix size {metadata} is not between 1 and 4.");

    /// <summary>Bytes of the length prefix for this column.</summary>
    protected abstract int PrefixSize(TableColumn column);

    public override int GetLength(ReadOnlySpan<byte> data, TableColumn column) => PrefixedLength(data, PrefixSize(column), column);

    public override ReadOnlySpan<byte> GetPayload(ReadOnlySpan<byte> value, TableColumn column) => value[PrefixSize(column)..];

    /// <summary>Decodes by the column charset; throws for binary columns, whose bytes are not text.</summary>
    public override string GetString(ReadOnlySpan<byte> value, TableColumn column) => column.IsBinary
        ? throw new InvalidCastException($"Column {column.QualifiedName} is binary ({Name} with the binary charset); read it with GetBytes.")
        : column.TextEncoding.GetString(GetPayload(value, column));

    /// <summary>A string for text columns, a byte array for binary ones (and for BLOBs when no charset was logged).</summary>
    public override object GetValue(ReadOnlySpan<byte> value, TableColumn column) => IsText(column)
        ? column.TextEncoding.GetString(GetPayload(value, column))
        : GetPayload(value, column).ToArray();

    private bool IsText(TableColumn column) => column.CollationId == 0 ? _textWhenCharsetUnknown : !column.IsBinary;
}

/// <summary>VARCHAR/VARBINARY (and the old VAR_STRING): metadata is the maximum byte length; a 1-byte length prefix up to 255, else 2 bytes.</summary>
internal sealed class VarCharDecoder : PrefixedBytesDecoder
{
    public VarCharDecoder(string name)
        : base(name, 2, bigEndianMetadata: false, textWhenCharsetUnknown: true)
    {
    }

    protected override int PrefixSize(TableColumn column) => column.Length > 255 ? 2 : 1;
}

/// <summary>
/// CHAR/BINARY (type STRING). The metadata packs the real type (STRING, ENUM or SET) and the maximum byte
/// length; lengths above 255 fold their two high bits, inverted, into bits 4-5 of the type byte.
/// </summary>
internal sealed class FixedStringDecoder : PrefixedBytesDecoder
{
    public FixedStringDecoder()
        : base("CHAR", 2, bigEndianMetadata: true, textWhenCharsetUnknown: true)
    {
    }

    public override ColumnDecoder Resolve(ColumnType wireType, int metadata, out ColumnType type, out int length, out int scale)
    {
        scale = 0;
        if (metadata < 256)
        {
            type = ColumnType.String;
            length = metadata;
            return this;
        }

        var typeByte = metadata >> 8;
        var lengthByte = metadata & 0xFF;
        if ((typeByte & 0x30) != 0x30)
        {
            length = lengthByte | (((typeByte & 0x30) ^ 0x30) << 4);
            type = (ColumnType)(typeByte | 0x30);
        }
        else
        {
            length = lengthByte;
            type = (ColumnType)typeByte;
        }

        return type switch
        {
            ColumnType.String => this,
            ColumnType.Enum => ColumnDecoders.Enum.Resolve(type, metadata, out type, out length, out scale),
            ColumnType.Set => ColumnDecoders.Set.Resolve(type, metadata, out type, out length, out scale),
            _ => throw new BinlogFormatException($"STRING column metadata 0x{metadata:X4} names real type {(int)type}, expected CHAR, ENUM or SET."),
        };
    }

    protected override int PrefixSize(TableColumn column) => column.Length > 255 ? 2 : 1;
}

/// <summary>TINYBLOB..LONGBLOB and the TEXT types (MySQL and MariaDB log them all as BLOB): metadata is the length-prefix size 1-4.</summary>
internal sealed class BlobDecoder : PrefixedBytesDecoder
{
    public BlobDecoder(string name)
        : base(name, 1, bigEndianMetadata: false, textWhenCharsetUnknown: false)
    {
    }

    protected override int PrefixSize(TableColumn column) => column.Length;

    public override ColumnDecoder Resolve(ColumnType wireType, int metadata, out ColumnType type, out int length, out int scale)
    {
        _ = base.Resolve(wireType, metadata, out type, out length, out scale);
        return CheckPrefixSize(this, metadata);
    }
}

/// <summary>GEOMETRY: like a BLOB (4-byte prefix); the payload is the SRID followed by WKB.</summary>
internal sealed class GeometryDecoder : PrefixedBytesDecoder
{
    public GeometryDecoder()
        : base("GEOMETRY", 1, bigEndianMetadata: false, textWhenCharsetUnknown: false)
    {
    }

    protected override int PrefixSize(TableColumn column) => column.Length;

    public override ColumnDecoder Resolve(ColumnType wireType, int metadata, out ColumnType type, out int length, out int scale)
    {
        _ = base.Resolve(wireType, metadata, out type, out length, out scale);
        return CheckPrefixSize(this, metadata);
    }

    public override string GetString(ReadOnlySpan<byte> value, TableColumn column) =>
        throw new InvalidCastException($"Column {column.QualifiedName} is GEOMETRY; read it with GetBytes.");

    public override object GetValue(ReadOnlySpan<byte> value, TableColumn column) => GetPayload(value, column).ToArray();
}

/// <summary>MySQL JSON (type 245): a BLOB-style length prefix then binary JSON, converted to JSON text by <see cref="GetString"/>.</summary>
internal sealed class JsonDecoder : PrefixedBytesDecoder
{
    public JsonDecoder()
        : base("JSON", 1, bigEndianMetadata: false, textWhenCharsetUnknown: true)
    {
    }

    protected override int PrefixSize(TableColumn column) => column.Length;

    public override ColumnDecoder Resolve(ColumnType wireType, int metadata, out ColumnType type, out int length, out int scale)
    {
        _ = base.Resolve(wireType, metadata, out type, out length, out scale);
        return CheckPrefixSize(this, metadata);
    }

    public override string GetString(ReadOnlySpan<byte> value, TableColumn column)
    {
        try
        {
            return MySqlJson.ToJsonText(GetPayload(value, column));
        }
        catch (BinlogFormatException ex)
        {
            throw new BinlogFormatException(ex.Code, $"JSON value of {column.QualifiedName}: {ex.Message}", ex);
        }
    }

    public override object GetValue(ReadOnlySpan<byte> value, TableColumn column) => GetString(value, column);
}

/// <summary>ENUM: the 1-based member index in 1 or 2 bytes (0 is the '' error value).</summary>
internal sealed class EnumDecoder : ColumnDecoder
{
    public EnumDecoder()
        : base("ENUM", 2, bigEndianMetadata: true)
    {
    }

    public override ColumnDecoder Resolve(ColumnType wireType, int metadata, out ColumnType type, out int length, out int scale)
    {
        type = ColumnType.Enum;
        length = metadata & 0xFF;
        scale = 0;
        return length is 1 or 2 ? this : throw new BinlogFormatException($"ENUM pack length {length} is not 1 or 2.");
    }

    public override int GetLength(ReadOnlySpan<byte> data, TableColumn column) => column.Length;

    public override long GetInt64(ReadOnlySpan<byte> value, TableColumn column) =>
        column.Length == 1 ? value[0] : BinaryPrimitives.ReadUInt16LittleEndian(value);

    public override ulong GetUInt64(ReadOnlySpan<byte> value, TableColumn column) => (ulong)GetInt64(value, column);

    /// <summary>The member name when ENUM_STR_VALUE metadata was logged, otherwise the index.</summary>
    public override string GetString(ReadOnlySpan<byte> value, TableColumn column)
    {
        var index = (int)GetInt64(value, column);
        var names = column.EnumOrSetValues;
        if (names is null)
        {
            return index.ToString(CultureInfo.InvariantCulture);
        }

        return index == 0 ? string.Empty
            : index <= names.Count ? names[index - 1]
            : throw new BinlogFormatException($"ENUM index {index} of {column.QualifiedName} exceeds its {names.Count} members.");
    }

    public override object GetValue(ReadOnlySpan<byte> value, TableColumn column) => (int)GetInt64(value, column);
}

/// <summary>SET: a little-endian bit mask of 1 to 8 bytes, bit i = member i.</summary>
internal sealed class SetDecoder : ColumnDecoder
{
    public SetDecoder()
        : base("SET", 2, bigEndianMetadata: true)
    {
    }

    public override ColumnDecoder Resolve(ColumnType wireType, int metadata, out ColumnType type, out int length, out int scale)
    {
        type = ColumnType.Set;
        length = metadata & 0xFF;
        scale = 0;
        return length is >= 1 and <= 8 ? this : throw new BinlogFormatException($"SET pack length {length} is not between 1 and 8.");
    }

    public override int GetLength(ReadOnlySpan<byte> data, TableColumn column) => column.Length;

    public override ulong GetUInt64(ReadOnlySpan<byte> value, TableColumn column)
    {
        ulong mask = 0;
        for (var i = value.Length - 1; i >= 0; i--)
        {
            mask = (mask << 8) | value[i];
        }

        return mask;
    }

    public override long GetInt64(ReadOnlySpan<byte> value, TableColumn column) => (long)GetUInt64(value, column);

    /// <summary>Comma-separated member names when SET_STR_VALUE metadata was logged, otherwise the mask.</summary>
    public override string GetString(ReadOnlySpan<byte> value, TableColumn column)
    {
        var mask = GetUInt64(value, column);
        var names = column.EnumOrSetValues;
        if (names is null)
        {
            return mask.ToString(CultureInfo.InvariantCulture);
        }

        var selected = new List<string>();
        for (var i = 0; i < 64 && mask >> i != 0; i++)
        {
            if ((mask & (1UL << i)) != 0)
            {
                selected.Add(i < names.Count ? names[i]
                    : throw new BinlogFormatException($"SET bit {i} of {column.QualifiedName} exceeds its {names.Count} members."));
            }
        }

        return string.Join(',', selected);
    }

    public override object GetValue(ReadOnlySpan<byte> value, TableColumn column) => GetUInt64(value, column);
}

/// <summary>The decoder for each TABLE_MAP type id; types missing here make the table undecodable (never the stream).</summary>
internal static class ColumnDecoders
{
    // Declared before ByType: static initializers run in textual order and Build() uses them.
    public static EnumDecoder Enum { get; } = new();

    public static SetDecoder Set { get; } = new();

    private static readonly ColumnDecoder?[] ByType = Build();

    /// <summary>The decoder for <paramref name="type"/>, or null for a type we cannot decode (old DECIMAL, MariaDB compressed columns...).</summary>
    public static ColumnDecoder? Find(ColumnType type) => ByType[(byte)type];

    private static ColumnDecoder?[] Build()
    {
        var table = new ColumnDecoder?[256];
        table[(int)ColumnType.Tiny] = new IntegerDecoder("TINYINT", 1);
        table[(int)ColumnType.Short] = new IntegerDecoder("SMALLINT", 2);
        table[(int)ColumnType.Int24] = new IntegerDecoder("MEDIUMINT", 3);
        table[(int)ColumnType.Long] = new IntegerDecoder("INT", 4);
        table[(int)ColumnType.LongLong] = new IntegerDecoder("BIGINT", 8);
        table[(int)ColumnType.Float] = new FloatingPointDecoder("FLOAT", 4);
        table[(int)ColumnType.Double] = new FloatingPointDecoder("DOUBLE", 8);
        table[(int)ColumnType.NewDecimal] = new NewDecimalDecoder();
        table[(int)ColumnType.Year] = new YearDecoder();
        table[(int)ColumnType.Date] = new DateDecoder();
        table[(int)ColumnType.NewDate] = table[(int)ColumnType.Date];
        table[(int)ColumnType.Time] = new TimeDecoder(legacy: true);
        table[(int)ColumnType.Time2] = new TimeDecoder(legacy: false);
        table[(int)ColumnType.DateTime] = new DateTimeDecoder(legacy: true);
        table[(int)ColumnType.DateTime2] = new DateTimeDecoder(legacy: false);
        table[(int)ColumnType.Timestamp] = new TimestampDecoder(legacy: true);
        table[(int)ColumnType.Timestamp2] = new TimestampDecoder(legacy: false);
        table[(int)ColumnType.VarChar] = new VarCharDecoder("VARCHAR");
        table[(int)ColumnType.VarString] = new VarCharDecoder("VAR_STRING");
        table[(int)ColumnType.String] = new FixedStringDecoder();
        table[(int)ColumnType.Enum] = Enum;
        table[(int)ColumnType.Set] = Set;
        table[(int)ColumnType.Bit] = new BitDecoder();
        table[(int)ColumnType.TinyBlob] = new BlobDecoder("TINYBLOB");
        table[(int)ColumnType.MediumBlob] = new BlobDecoder("MEDIUMBLOB");
        table[(int)ColumnType.LongBlob] = new BlobDecoder("LONGBLOB");
        table[(int)ColumnType.Blob] = new BlobDecoder("BLOB");
        table[(int)ColumnType.Json] = new JsonDecoder();
        table[(int)ColumnType.Geometry] = new GeometryDecoder();
        return table;
    }
}
