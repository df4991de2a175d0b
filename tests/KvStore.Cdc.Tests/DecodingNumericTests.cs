using KvStore.Cdc.Decoding;
using KvStore.Cdc.Events;

namespace KvStore.Cdc.Tests;

/// <summary>Integers (signedness), floating point and packed DECIMAL from hand-built bytes.</summary>
public sealed class DecodingNumericTests
{
    [Theory]
    [InlineData(ColumnType.Tiny, "FF", -1L, 255UL)]
    [InlineData(ColumnType.Short, "0080", -32768L, 32768UL)]
    [InlineData(ColumnType.Int24, "FFFFFF", -1L, 16777215UL)]
    [InlineData(ColumnType.Int24, "FFFF7F", 8388607L, 8388607UL)]
    [InlineData(ColumnType.Long, "FEFFFFFF", -2L, 4294967294UL)]
    [InlineData(ColumnType.LongLong, "FFFFFFFFFFFFFFFF", -1L, ulong.MaxValue)]
    public void Integers_follow_the_column_signedness(object typeCode, string hex, long asSigned, ulong asUnsigned)
    {
        var type = (ColumnType)typeCode;
        var value = Convert.FromHexString(hex);
        var signedColumn = EventsTestData.Column(type);
        var unsignedColumn = EventsTestData.Column(type, unsigned: true);
        Assert.Equal(value.Length, signedColumn.Decoder.GetLength(value, signedColumn));
        Assert.Equal(asSigned, signedColumn.Decoder.GetInt64(value, signedColumn));
        Assert.Equal(asUnsigned, unsignedColumn.Decoder.GetUInt64(value, unsignedColumn));
        Assert.Equal(asUnsigned.ToString(System.Globalization.CultureInfo.InvariantCulture), unsignedColumn.Decoder.GetString(value, unsignedColumn));
        if (asSigned < 0)
        {
            Assert.Throws<OverflowException>(() => signedColumn.Decoder.GetUInt64(value, signedColumn));
        }
    }

    [Fact]
    public void Unsigned_bigint_above_int64_overflows_int64_only()
    {
        var column = EventsTestData.Column(ColumnType.LongLong, unsigned: true);
        var value = BitConverter.GetBytes(ulong.MaxValue - 1);
        Assert.Throws<OverflowException>(() => column.Decoder.GetInt64(value, column));
        Assert.Equal(ulong.MaxValue - 1, column.Decoder.GetValue(value, column));
    }

    [Fact]
    public void Floating_point_values_decode()
    {
        var single = EventsTestData.Column(ColumnType.Float, 4);
        Assert.Equal(1.5, single.Decoder.GetDouble(BitConverter.GetBytes(1.5f), single));
        Assert.IsType<float>(single.Decoder.GetValue(BitConverter.GetBytes(1.5f), single));
        var dbl = EventsTestData.Column(ColumnType.Double, 8);
        Assert.Equal(123456789.0987654321, dbl.Decoder.GetDouble(BitConverter.GetBytes(123456789.0987654321), dbl));
    }

    [Theory]
    [InlineData(14, 4, "810DFB38D204D2", "1234567890.1234")]
    [InlineData(14, 4, "7EF204C72DFB2D", "-1234567890.1234")]
    [InlineData(10, 2, "800000FA00", "250.00")]
    [InlineData(10, 2, "7FFFFFFF9C", "-0.99")]
    [InlineData(5, 0, "800000", "0")]
    [InlineData(4, 4, "84D2", "0.1234")]
    [InlineData(18, 9, "800000013ADE68B1", "1.987654321")]
    public void Packed_decimal_decodes_exactly(int precision, int scale, string hex, string expected)
    {
        var column = EventsTestData.Column(ColumnType.NewDecimal, (precision << 8) | scale);
        var value = Convert.FromHexString(hex);
        Assert.Equal(value.Length, column.Decoder.GetLength(value, column));
        Assert.Equal(expected, column.Decoder.GetString(value, column));
        Assert.Equal(decimal.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), column.Decoder.GetDecimal(value, column));
    }

    [Fact]
    public void Decimal_beyond_system_decimal_is_text()
    {
        var column = EventsTestData.Column(ColumnType.NewDecimal, (65 << 8) | 10);

        // 65 nines: a 1-digit leading group (55 = 6 * 9 + 1), six full groups, one full and one 1-digit fraction group.
        var value = new Bytes().U8(0x80 | 9).U32Be(999999999, 6).U32Be(999999999, 1).U8(9).ToArray();
        Assert.Equal(30, column.Decoder.GetLength(value, column));
        var text = new string('9', 55) + "." + new string('9', 10);
        Assert.Equal(text, column.Decoder.GetString(value, column));
        Assert.Equal(text, column.Decoder.GetValue(value, column));
        Assert.Throws<OverflowException>(() => column.Decoder.GetDecimal(value, column));
    }

    [Fact]
    public void Invalid_decimal_metadata_is_a_format_error()
    {
        Assert.Throws<BinlogFormatException>(() => EventsTestData.Column(ColumnType.NewDecimal, (66 << 8) | 2));
        Assert.Throws<BinlogFormatException>(() => EventsTestData.Column(ColumnType.NewDecimal, (5 << 8) | 6));
    }
}

internal static class BytesBigEndianExtensions
{
    /// <summary>Appends <paramref name="count"/> big-endian copies of a 32-bit group (for packed decimals).</summary>
    public static Bytes U32Be(this Bytes bytes, uint value, int count)
    {
        for (var i = 0; i < count; i++)
        {
            bytes.Raw((byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value);
        }

        return bytes;
    }
}
