using System.Text;
using KvStore.Cdc.Decoding;
using KvStore.Cdc.Events;

namespace KvStore.Cdc.Tests;

/// <summary>VARCHAR/CHAR/BLOB/ENUM/SET/BIT from hand-built bytes: prefix sizes, folded lengths, charsets.</summary>
public sealed class DecodingStringTests
{
    [Theory]
    [InlineData(50, 1)]
    [InlineData(255, 1)]
    [InlineData(256, 2)]
    [InlineData(1020, 2)]
    public void Varchar_length_prefix_is_two_bytes_above_255_max_bytes(int maxBytes, int prefix)
    {
        var column = EventsTestData.Column(ColumnType.VarChar, maxBytes, collation: 45);
        var text = "héllo";
        var payload = Encoding.UTF8.GetBytes(text);
        var value = (prefix == 1 ? new Bytes().U8(payload.Length) : new Bytes().U16(payload.Length)).Raw(payload).Raw(0xEE, 0xEE).ToArray();

        Assert.Equal(prefix + payload.Length, column.Decoder.GetLength(value, column));
        var exact = value.AsSpan(0, prefix + payload.Length);
        Assert.Equal(text, column.Decoder.GetString(exact, column));
        Assert.Equal(payload, column.Decoder.GetPayload(exact, column).ToArray());
    }

    [Fact]
    public void Latin1_varchar_decodes_by_its_charset()
    {
        var column = EventsTestData.Column(ColumnType.VarChar, 50, collation: 8);
        Assert.Equal("café", column.Decoder.GetString([4, (byte)'c', (byte)'a', (byte)'f', 0xE9], column));
    }

    [Fact]
    public void Binary_columns_are_bytes_not_strings()
    {
        var column = EventsTestData.Column(ColumnType.VarChar, 200, collation: Charsets.Binary);
        byte[] value = [3, 0xDE, 0xAD, 0xBE];
        Assert.Throws<InvalidCastException>(() => column.Decoder.GetString(value, column));
        Assert.Equal(new byte[] { 0xDE, 0xAD, 0xBE }, column.Decoder.GetValue(value, column));
    }

    [Fact]
    public void Without_charset_varchar_is_text_and_blob_is_bytes()
    {
        var varchar = EventsTestData.Column(ColumnType.VarChar, 10);
        Assert.Equal("ab", varchar.Decoder.GetValue([2, (byte)'a', (byte)'b'], varchar));
        var blob = EventsTestData.Column(ColumnType.Blob, 2);
        Assert.Equal(new byte[] { (byte)'a', (byte)'b' }, blob.Decoder.GetValue([2, 0, (byte)'a', (byte)'b'], blob));
        Assert.Equal("ab", blob.Decoder.GetString([2, 0, (byte)'a', (byte)'b'], blob));
    }

    [Theory]
    [InlineData(0xFE08, 8, 1)] // CHAR(2) utf8mb4
    [InlineData(0xDE00, 512, 2)] // CHAR(128) utf8mb4: 512 = ((0x10 ^ 0x30) << 4) | 0x00
    [InlineData(0xEE00, 256, 2)]
    [InlineData(0xCEFC, 1020, 2)] // CHAR(255) utf8mb4
    public void Char_max_length_unfolds_from_the_type_byte(int metadata, int maxBytes, int prefix)
    {
        var column = EventsTestData.Column(ColumnType.String, metadata, collation: 255);
        Assert.Equal(ColumnType.String, column.Type);
        Assert.Equal(maxBytes, column.Length);
        var value = (prefix == 1 ? new Bytes().U8(2) : new Bytes().U16(2)).Utf8("ab").ToArray();
        Assert.Equal(prefix + 2, column.Decoder.GetLength(value, column));
        Assert.Equal("ab", column.Decoder.GetString(value, column));
    }

    [Fact]
    public void Enum_and_set_are_recognised_inside_string_metadata()
    {
        var enumColumn = EventsTestData.Column(ColumnType.String, 0xF702, values: ["a", "b", "c"]);
        Assert.Equal(ColumnType.Enum, enumColumn.Type);
        Assert.IsType<EnumDecoder>(enumColumn.Decoder);
        Assert.Equal(2, enumColumn.Decoder.GetLength([3, 0], enumColumn));
        Assert.Equal(3, enumColumn.Decoder.GetInt64([3, 0], enumColumn));
        Assert.Equal("c", enumColumn.Decoder.GetString([3, 0], enumColumn));
        Assert.Equal(string.Empty, enumColumn.Decoder.GetString([0, 0], enumColumn));
        Assert.Throws<BinlogFormatException>(() => enumColumn.Decoder.GetString([4, 0], enumColumn));

        var setColumn = EventsTestData.Column(ColumnType.String, 0xF808, values: Enumerable.Range(0, 64).Select(i => $"m{i}").ToArray());
        Assert.Equal(ColumnType.Set, setColumn.Type);
        byte[] mask = [0b101, 0, 0, 0, 0, 0, 0, 0x80];
        Assert.Equal(8, setColumn.Decoder.GetLength(mask, setColumn));
        Assert.Equal(0x8000_0000_0000_0005UL, setColumn.Decoder.GetUInt64(mask, setColumn));
        Assert.Equal("m0,m2,m63", setColumn.Decoder.GetString(mask, setColumn));

        var unnamed = EventsTestData.Column(ColumnType.String, 0xF801);
        Assert.Equal("5", unnamed.Decoder.GetString([5], unnamed));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Blob_length_prefix_size_comes_from_the_metadata(int prefix)
    {
        var column = EventsTestData.Column(ColumnType.Blob, prefix, collation: Charsets.Binary);
        var value = new byte[prefix + 3];
        value[0] = 3;
        value[prefix] = 0xAB;
        Assert.Equal(prefix + 3, column.Decoder.GetLength(value, column));
        Assert.Equal(new byte[] { 0xAB, 0, 0 }, column.Decoder.GetPayload(value, column).ToArray());
    }

    [Fact]
    public void Invalid_blob_prefix_size_is_a_format_error()
    {
        Assert.Throws<BinlogFormatException>(() => EventsTestData.Column(ColumnType.Blob, 5));
    }

    [Fact]
    public void Length_prefix_cut_short_is_a_format_error()
    {
        var column = EventsTestData.Column(ColumnType.VarChar, 1000);
        var error = Assert.Throws<BinlogFormatException>(() => column.Decoder.GetLength([7], column));
        Assert.Contains("db.t.c", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bit_values_are_big_endian()
    {
        // BIT(12): metadata is (12 % 8 = 4 bits, 1 whole byte).
        var column = EventsTestData.Column(ColumnType.Bit, 4 | (1 << 8));
        Assert.Equal(12, column.Length);
        Assert.Equal(2, column.Decoder.GetLength([0x0A, 0xBC], column));
        Assert.Equal(0xABCUL, column.Decoder.GetUInt64([0x0A, 0xBC], column));
    }

    [Fact]
    public void Geometry_is_returned_as_bytes()
    {
        var column = EventsTestData.Column(ColumnType.Geometry, 4);
        byte[] value = [2, 0, 0, 0, 0x01, 0x02];
        Assert.Equal(6, column.Decoder.GetLength(value, column));
        Assert.Equal(new byte[] { 1, 2 }, column.Decoder.GetValue(value, column));
        Assert.Throws<InvalidCastException>(() => column.Decoder.GetString(value, column));
    }
}
