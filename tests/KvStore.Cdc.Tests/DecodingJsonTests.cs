using System.Buffers.Binary;
using System.Text;
using KvStore.Cdc.Decoding;
using KvStore.Cdc.Events;

namespace KvStore.Cdc.Tests;

/// <summary>MySQL binary JSON to text, with documents built by a small encoder that follows the format description.</summary>
public sealed class DecodingJsonTests
{
    [Theory]
    [InlineData("0400", "null")]
    [InlineData("0401", "true")]
    [InlineData("0402", "false")]
    [InlineData("05FFFF", "-1")]
    [InlineData("06FFFF", "65535")]
    [InlineData("0700000080", "-2147483648")]
    [InlineData("08FFFFFFFF", "4294967295")]
    [InlineData("090000000000000080", "-9223372036854775808")]
    [InlineData("0AFFFFFFFFFFFFFFFF", "18446744073709551615")]
    [InlineData("0B000000000000F83F", "1.5")]
    [InlineData("0B0000000000000840", "3.0")]
    [InlineData("0C03616263", "\"abc\"")]
    public void Scalars_convert_to_json_text(string hex, string json)
    {
        Assert.Equal(json, MySqlJson.ToJsonText(Convert.FromHexString(hex)));
    }

    [Fact]
    public void Empty_document_is_json_null()
    {
        Assert.Equal("null", MySqlJson.ToJsonText([]));
    }

    [Fact]
    public void Strings_are_escaped_and_long_strings_use_multi_byte_sizes()
    {
        var text = "a\"b\\c\nd\u0001é" + new string('x', 200);
        var json = MySqlJson.ToJsonText(Json.Document(text));
        Assert.Equal("\"a\\\"b\\\\c\\nd\\u0001é" + new string('x', 200) + "\"", json);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Objects_and_arrays_convert_in_small_and_large_form(bool large)
    {
        var document = Json.Document(
            new Json.Obj(
                ("a", 1),
                ("b", new Json.Arr(true, null, "x", -70000, 70000L, 2.25)),
                ("c", new Json.Obj(("d", 1.5), ("e", false)))),
            large);
        Assert.Equal(
            """{"a": 1, "b": [true, null, "x", -70000, 70000, 2.25], "c": {"d": 1.5, "e": false}}""",
            MySqlJson.ToJsonText(document));
    }

    [Fact]
    public void Large_object_holds_more_than_64_kilobytes()
    {
        var big = new string('v', 70_000);
        var document = Json.Document(new Json.Obj(("k1", big), ("k2", 7)), large: true);
        Assert.True(document.Length > 70_000);
        Assert.Equal($$"""{"k1": "{{big}}", "k2": 7}""", MySqlJson.ToJsonText(document));
    }

    [Fact]
    public void Opaque_decimal_and_temporal_values_convert_like_mysql()
    {
        // DECIMAL(10,2) 250.00 as an opaque value: type 246, size, precision, scale, packed decimal.
        Assert.Equal("250.00", MySqlJson.ToJsonText(Convert.FromHexString("0FF607" + "0A02" + "800000FA00")));

        // Packed temporal: ((((year * 13 + month) << 5 | day) << 17 | hour << 12 | minute << 6 | second) << 24) + microseconds.
        var date = PackedDateTime(2012, 3, 18, 0, 0, 0, 0);
        var datetime = PackedDateTime(2012, 3, 18, 11, 30, 45, 123);
        var time = -(((long)((87 << 12) | (31 << 6) | 46) << 24) + 654321);
        Assert.Equal("\"2012-03-18\"", MySqlJson.ToJsonText(Opaque(ColumnType.Date, BitConverter.GetBytes(date))));
        Assert.Equal("\"2012-03-18 11:30:45.000123\"", MySqlJson.ToJsonText(Opaque(ColumnType.DateTime, BitConverter.GetBytes(datetime))));
        Assert.Equal("\"-87:31:46.654321\"", MySqlJson.ToJsonText(Opaque(ColumnType.Time, BitConverter.GetBytes(time))));
        Assert.Equal("\"base64:type16:AQI=\"", MySqlJson.ToJsonText(Opaque(ColumnType.Bit, [1, 2])));
    }

    [Fact]
    public void Offsets_outside_the_document_are_format_errors()
    {
        var document = Json.Document(new Json.Arr("abc", "def"));
        Assert.Throws<BinlogFormatException>(() => MySqlJson.ToJsonText(document.AsSpan(0, document.Length - 2)));
        document[6] = 0xF0; // the first value entry's offset
        Assert.Throws<BinlogFormatException>(() => MySqlJson.ToJsonText(document));
    }

    [Fact]
    public void Absurd_nesting_fails_instead_of_overflowing_the_stack()
    {
        object value = 1;
        for (var i = 0; i < 300; i++)
        {
            value = new Json.Arr(value);
        }

        Assert.Throws<BinlogFormatException>(() => MySqlJson.ToJsonText(Json.Document(value)));
    }

    [Fact]
    public void Json_column_reads_as_text_and_its_bytes_stay_binary()
    {
        var column = EventsTestData.Column(ColumnType.Json, 4);
        var document = Json.Document(new Json.Obj(("id", 1)));
        var value = new Bytes().U32((uint)document.Length).Raw(document).ToArray();
        Assert.Equal(value.Length, column.Decoder.GetLength(value, column));
        Assert.Equal("""{"id": 1}""", column.Decoder.GetString(value, column));
        Assert.Equal(document, column.Decoder.GetPayload(value, column).ToArray());
    }

    private static long PackedDateTime(int year, int month, int day, int hour, int minute, int second, int micros)
    {
        long ymd = (((year * 13) + month) << 5) | day;
        long hms = (hour << 12) | (minute << 6) | second;
        return (((ymd << 17) | hms) << 24) + micros;
    }

    private static byte[] Opaque(ColumnType type, byte[] data) => new Bytes().U8(0x0F).U8((int)type).U8(data.Length).Raw(data).ToArray();

    /// <summary>A minimal binary JSON writer: objects, arrays, strings, booleans, null, ints and doubles.</summary>
    private static class Json
    {
        public static byte[] Document(object? value, bool large = false)
        {
            var (type, bytes) = Encode(value, large);
            return [type, .. bytes];
        }

        private static (byte Type, byte[] Bytes) Encode(object? value, bool large) => value switch
        {
            null => (0x04, [0x00]),
            true => (0x04, [0x01]),
            false => (0x04, [0x02]),
            int i when i is >= short.MinValue and <= short.MaxValue => (0x05, BitConverter.GetBytes((short)i)),
            int i => (0x07, BitConverter.GetBytes(i)),
            long l => (0x09, BitConverter.GetBytes(l)),
            double d => (0x0B, BitConverter.GetBytes(d)),
            string s => (0x0C, [.. VariableLength(Encoding.UTF8.GetByteCount(s)), .. Encoding.UTF8.GetBytes(s)]),
            Obj o => (large ? (byte)0x01 : (byte)0x00, Container(o.Members.Select(m => ((string?)m.Key, m.Value)).ToList(), large)),
            Arr a => (large ? (byte)0x03 : (byte)0x02, Container(a.Items.Select(v => ((string?)null, v)).ToList(), large)),
            _ => throw new ArgumentException($"Cannot encode {value.GetType()}", nameof(value)),
        };

        private static byte[] Container(List<(string? Key, object? Value)> members, bool large)
        {
            var offsetSize = large ? 4 : 2;
            var isObject = members.Count > 0 && members[0].Key is not null;
            var headerSize = (2 * offsetSize) + (isObject ? members.Count * (offsetSize + 2) : 0) + (members.Count * (1 + offsetSize));
            var keys = new List<byte>();
            var values = new List<byte>();
            var keyEntries = new List<byte>();
            var valueEntries = new List<byte>();
            foreach (var (key, _) in members.Where(m => m.Key is not null))
            {
                var keyBytes = Encoding.UTF8.GetBytes(key!);
                keyEntries.AddRange(Offset(headerSize + keys.Count, large));
                keyEntries.AddRange(BitConverter.GetBytes((ushort)keyBytes.Length));
                keys.AddRange(keyBytes);
            }

            foreach (var (_, member) in members)
            {
                var (type, bytes) = Encode(member, large);
                valueEntries.Add(type);
                var inlined = type is 0x04 or 0x05 or 0x06 || (large && type is 0x07 or 0x08);
                if (inlined)
                {
                    var slot = new byte[offsetSize];
                    bytes.CopyTo(slot, 0);
                    valueEntries.AddRange(slot);
                }
                else
                {
                    valueEntries.AddRange(Offset(headerSize + keys.Count + values.Count, large));
                    values.AddRange(bytes);
                }
            }

            var size = headerSize + keys.Count + values.Count;
            return [.. Offset(members.Count, large), .. Offset(size, large), .. keyEntries, .. valueEntries, .. keys, .. values];
        }

        private static byte[] Offset(int value, bool large)
        {
            if (!large && value > ushort.MaxValue)
            {
                throw new ArgumentOutOfRangeException(nameof(value), "Too big for a small container.");
            }

            var bytes = new byte[large ? 4 : 2];
            if (large)
            {
                BinaryPrimitives.WriteInt32LittleEndian(bytes, value);
            }
            else
            {
                BinaryPrimitives.WriteUInt16LittleEndian(bytes, (ushort)value);
            }

            return bytes;
        }

        private static byte[] VariableLength(int length)
        {
            var bytes = new List<byte>();
            do
            {
                var next = (byte)(length & 0x7F);
                length >>= 7;
                bytes.Add(length > 0 ? (byte)(next | 0x80) : next);
            }
            while (length > 0);
            return [.. bytes];
        }

        public sealed record Obj(params (string Key, object? Value)[] Members);

        public sealed record Arr(params object?[] Items);
    }
}
