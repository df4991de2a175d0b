using System.Buffers.Binary;
using System.Globalization;
using KvStore.Cdc.Events;

namespace KvStore.Cdc.Decoding;

/// <summary>TINYINT, SMALLINT, MEDIUMINT, INT, BIGINT: little-endian two's complement; UNSIGNED from SIGNEDNESS metadata.</summary>
internal sealed class IntegerDecoder : ColumnDecoder
{
    private readonly int _size;

    public IntegerDecoder(string name, int size)
        : base(name, 0)
    {
        _size = size;
    }

    public override int GetLength(ReadOnlySpan<byte> data, TableColumn column) => _size;

    public override long GetInt64(ReadOnlySpan<byte> value, TableColumn column)
    {
        if (!column.IsUnsigned)
        {
            return ReadSigned(value);
        }

        var unsigned = ReadUnsigned(value);
        return unsigned <= long.MaxValue
            ? (long)unsigned
            : throw new OverflowException($"Column {column.QualifiedName} holds {unsigned}, which does not fit in Int64; use GetUInt64.");
    }

    public override ulong GetUInt64(ReadOnlySpan<byte> value, TableColumn column)
    {
        if (column.IsUnsigned)
        {
            return ReadUnsigned(value);
        }

        var signed = ReadSigned(value);
        return signed >= 0
            ? (ulong)signed
            : throw new OverflowException($"Column {column.QualifiedName} holds {signed}, which does not fit in UInt64.");
    }

    public override double GetDouble(ReadOnlySpan<byte> value, TableColumn column) =>
        column.IsUnsigned ? ReadUnsigned(value) : ReadSigned(value);

    public override decimal GetDecimal(ReadOnlySpan<byte> value, TableColumn column) =>
        column.IsUnsigned ? ReadUnsigned(value) : ReadSigned(value);

    public override string GetString(ReadOnlySpan<byte> value, TableColumn column) => column.IsUnsigned
        ? ReadUnsigned(value).ToString(CultureInfo.InvariantCulture)
        : ReadSigned(value).ToString(CultureInfo.InvariantCulture);

    public override object GetValue(ReadOnlySpan<byte> value, TableColumn column) => (_size, column.IsUnsigned) switch
    {
        (1, false) => (sbyte)value[0],
        (1, true) => value[0],
        (2, false) => BinaryPrimitives.ReadInt16LittleEndian(value),
        (2, true) => BinaryPrimitives.ReadUInt16LittleEndian(value),
        (3 or 4, false) => (int)ReadSigned(value),
        (3 or 4, true) => (uint)ReadUnsigned(value),
        (_, false) => ReadSigned(value),
        (_, true) => ReadUnsigned(value),
    };

    /// <summary>The value with the sign of the wire bits, whatever the column's signedness (what mariadb-binlog prints first).</summary>
    public long ReadSigned(ReadOnlySpan<byte> value) => _size switch
    {
        1 => (sbyte)value[0],
        2 => BinaryPrimitives.ReadInt16LittleEndian(value),
        3 => ((value[0] | (value[1] << 8) | (value[2] << 16)) << 8) >> 8,
        4 => BinaryPrimitives.ReadInt32LittleEndian(value),
        _ => BinaryPrimitives.ReadInt64LittleEndian(value),
    };

    /// <summary>The value zero-extended.</summary>
    public ulong ReadUnsigned(ReadOnlySpan<byte> value) => _size switch
    {
        1 => value[0],
        2 => BinaryPrimitives.ReadUInt16LittleEndian(value),
        3 => (uint)(value[0] | (value[1] << 8) | (value[2] << 16)),
        4 => BinaryPrimitives.ReadUInt32LittleEndian(value),
        _ => BinaryPrimitives.ReadUInt64LittleEndian(value),
    };
}

/// <summary>YEAR: one byte, 0 for the zero year, otherwise the year minus 1900.</summary>
internal sealed class YearDecoder : ColumnDecoder
{
    public YearDecoder()
        : base("YEAR", 0)
    {
    }

    public override int GetLength(ReadOnlySpan<byte> data, TableColumn column) => 1;

    public override long GetInt64(ReadOnlySpan<byte> value, TableColumn column) => value[0] == 0 ? 0 : 1900 + value[0];

    public override ulong GetUInt64(ReadOnlySpan<byte> value, TableColumn column) => (ulong)GetInt64(value, column);

    public override string GetString(ReadOnlySpan<byte> value, TableColumn column) =>
        GetInt64(value, column).ToString("D4", CultureInfo.InvariantCulture);

    public override object GetValue(ReadOnlySpan<byte> value, TableColumn column) => (int)GetInt64(value, column);
}

/// <summary>FLOAT (4 bytes) and DOUBLE (8 bytes), IEEE little-endian; the metadata byte repeats the size.</summary>
internal sealed class FloatingPointDecoder : ColumnDecoder
{
    private readonly int _size;

    public FloatingPointDecoder(string name, int size)
        : base(name, 1)
    {
        _size = size;
    }

    public override int GetLength(ReadOnlySpan<byte> data, TableColumn column) => _size;

    public override double GetDouble(ReadOnlySpan<byte> value, TableColumn column) => _size == 4
        ? BinaryPrimitives.ReadSingleLittleEndian(value)
        : BinaryPrimitives.ReadDoubleLittleEndian(value);

    public override decimal GetDecimal(ReadOnlySpan<byte> value, TableColumn column) => (decimal)GetDouble(value, column);

    public override string GetString(ReadOnlySpan<byte> value, TableColumn column) => _size == 4
        ? BinaryPrimitives.ReadSingleLittleEndian(value).ToString("R", CultureInfo.InvariantCulture)
        : BinaryPrimitives.ReadDoubleLittleEndian(value).ToString("R", CultureInfo.InvariantCulture);

    public override object GetValue(ReadOnlySpan<byte> value, TableColumn column) => _size == 4
        ? (object)BinaryPrimitives.ReadSingleLittleEndian(value)
        : BinaryPrimitives.ReadDoubleLittleEndian(value);
}

/// <summary>DECIMAL (NEWDECIMAL): metadata is precision then scale; values use <see cref="MySqlDecimal"/>'s packed format.</summary>
internal sealed class NewDecimalDecoder : ColumnDecoder
{
    // System.Decimal holds 28 significant digits in every case.
    private const int MaxDecimalPrecision = 28;

    public NewDecimalDecoder()
        : base("DECIMAL", 2, bigEndianMetadata: true)
    {
    }

    public override ColumnDecoder Resolve(ColumnType wireType, int metadata, out ColumnType type, out int length, out int scale)
    {
        type = wireType;
        length = metadata >> 8;
        scale = metadata & 0xFF;
        _ = MySqlDecimal.GetBinarySize(length, scale);
        return this;
    }

    public override int GetLength(ReadOnlySpan<byte> data, TableColumn column) => MySqlDecimal.GetBinarySize(column.Length, column.Scale);

    public override decimal GetDecimal(ReadOnlySpan<byte> value, TableColumn column) => MySqlDecimal.ToDecimal(value, column.Length, column.Scale);

    public override double GetDouble(ReadOnlySpan<byte> value, TableColumn column) =>
        double.Parse(GetString(value, column), NumberStyles.Float, CultureInfo.InvariantCulture);

    public override string GetString(ReadOnlySpan<byte> value, TableColumn column) => MySqlDecimal.ToString(value, column.Length, column.Scale);

    /// <summary><see cref="decimal"/> when the precision fits, otherwise the exact string.</summary>
    public override object GetValue(ReadOnlySpan<byte> value, TableColumn column) => column.Length <= MaxDecimalPrecision
        ? GetDecimal(value, column)
        : GetString(value, column);
}

/// <summary>BIT(n): metadata is (bits mod 8, whole bytes); the value is big-endian.</summary>
internal sealed class BitDecoder : ColumnDecoder
{
    public BitDecoder()
        : base("BIT", 2)
    {
    }

    public override ColumnDecoder Resolve(ColumnType wireType, int metadata, out ColumnType type, out int length, out int scale)
    {
        type = wireType;
        length = ((metadata >> 8) * 8) + (metadata & 0xFF);
        scale = 0;
        return this;
    }

    public override int GetLength(ReadOnlySpan<byte> data, TableColumn column) => (column.Length + 7) / 8;

    public override ulong GetUInt64(ReadOnlySpan<byte> value, TableColumn column)
    {
        ulong result = 0;
        foreach (var b in value)
        {
            result = (result << 8) | b;
        }

        return result;
    }

    public override long GetInt64(ReadOnlySpan<byte> value, TableColumn column) => (long)GetUInt64(value, column);

    public override string GetString(ReadOnlySpan<byte> value, TableColumn column) =>
        GetUInt64(value, column).ToString(CultureInfo.InvariantCulture);

    public override object GetValue(ReadOnlySpan<byte> value, TableColumn column) => GetUInt64(value, column);
}
