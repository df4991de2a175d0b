using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using KvStore.Cdc.Events;

namespace KvStore.Cdc.Decoding;

/// <summary>
/// Converts MySQL's binary JSON (the storage format of JSON columns, type 245) to JSON text in MySQL's
/// own style (<c>{"a": 1, "b": [true, null]}</c>). Offsets inside objects and arrays are relative to
/// the start of that object/array; "small" containers use 2-byte offsets, "large" ones 4-byte offsets.
/// </summary>
internal static class MySqlJson
{
    private const byte SmallObject = 0x00;
    private const byte LargeObject = 0x01;
    private const byte SmallArray = 0x02;
    private const byte LargeArray = 0x03;
    private const byte Literal = 0x04;
    private const byte Int16 = 0x05;
    private const byte UInt16 = 0x06;
    private const byte Int32 = 0x07;
    private const byte UInt32 = 0x08;
    private const byte Int64 = 0x09;
    private const byte UInt64 = 0x0A;
    private const byte Double = 0x0B;
    private const byte String = 0x0C;
    private const byte Opaque = 0x0F;

    // MySQL limits documents to depth 100; the cap only protects the stack from corrupted input.
    private const int MaxDepth = 200;

    /// <summary>JSON text for a binary JSON document; an empty document is JSON null, as MySQL treats it.</summary>
    public static string ToJsonText(ReadOnlySpan<byte> document)
    {
        if (document.IsEmpty)
        {
            return "null";
        }

        var builder = new StringBuilder(document.Length * 2);
        WriteValue(builder, document[0], document[1..], 0);
        return builder.ToString();
    }

    private static void WriteValue(StringBuilder builder, byte type, ReadOnlySpan<byte> data, int depth)
    {
        if (depth > MaxDepth)
        {
            throw new BinlogFormatException("Binary JSON nests too deeply (corrupted value?).");
        }

        switch (type)
        {
            case SmallObject:
                WriteObject(builder, data, large: false, depth);
                break;
            case LargeObject:
                WriteObject(builder, data, large: true, depth);
                break;
            case SmallArray:
                WriteArray(builder, data, large: false, depth);
                break;
            case LargeArray:
                WriteArray(builder, data, large: true, depth);
                break;
            case Literal:
                WriteLiteral(builder, Need(data, 1)[0]);
                break;
            case Int16:
                builder.Append(BinaryPrimitives.ReadInt16LittleEndian(Need(data, 2)));
                break;
            case UInt16:
                builder.Append(BinaryPrimitives.ReadUInt16LittleEndian(Need(data, 2)));
                break;
            case Int32:
                builder.Append(BinaryPrimitives.ReadInt32LittleEndian(Need(data, 4)));
                break;
            case UInt32:
                builder.Append(BinaryPrimitives.ReadUInt32LittleEndian(Need(data, 4)));
                break;
            case Int64:
                builder.Append(BinaryPrimitives.ReadInt64LittleEndian(Need(data, 8)));
                break;
            case UInt64:
                builder.Append(BinaryPrimitives.ReadUInt64LittleEndian(Need(data, 8)));
                break;
            case Double:
                WriteDouble(builder, BinaryPrimitives.ReadDoubleLittleEndian(Need(data, 8)));
                break;
            case String:
            {
                var length = ReadVariableLength(data, out var used);
                WriteString(builder, Encoding.UTF8.GetString(Slice(data, used, length)));
                break;
            }

            case Opaque:
                WriteOpaque(builder, data);
                break;
            default:
                throw new BinlogFormatException($"Unknown binary JSON value type 0x{type:X2}.");
        }
    }

    private static void WriteObject(StringBuilder builder, ReadOnlySpan<byte> data, bool large, int depth)
    {
        var offsetSize = large ? 4 : 2;
        var count = ReadOffset(data, 0, large);
        var size = ReadOffset(data, offsetSize, large);
        if (size > data.Length)
        {
            throw new BinlogFormatException($"Binary JSON object claims {size} bytes, {data.Length} available.");
        }

        var container = data[..size];
        var keyEntrySize = offsetSize + 2;
        var valueEntrySize = 1 + offsetSize;
        var keyEntries = 2 * offsetSize;
        var valueEntries = keyEntries + (count * keyEntrySize);
        _ = Slice(container, valueEntries, count * valueEntrySize);

        builder.Append('{');
        for (var i = 0; i < count; i++)
        {
            if (i > 0)
            {
                builder.Append(", ");
            }

            var keyEntry = keyEntries + (i * keyEntrySize);
            var keyOffset = ReadOffset(container, keyEntry, large);
            var keyLength = BinaryPrimitives.ReadUInt16LittleEndian(Slice(container, keyEntry + offsetSize, 2));
            WriteString(builder, Encoding.UTF8.GetString(Slice(container, keyOffset, keyLength)));
            builder.Append(": ");
            WriteEntry(builder, container, valueEntries + (i * valueEntrySize), large, depth);
        }

        builder.Append('}');
    }

    private static void WriteArray(StringBuilder builder, ReadOnlySpan<byte> data, bool large, int depth)
    {
        var offsetSize = large ? 4 : 2;
        var count = ReadOffset(data, 0, large);
        var size = ReadOffset(data, offsetSize, large);
        if (size > data.Length)
        {
            throw new BinlogFormatException($"Binary JSON array claims {size} bytes, {data.Length} available.");
        }

        var container = data[..size];
        var valueEntrySize = 1 + offsetSize;
        var valueEntries = 2 * offsetSize;
        _ = Slice(container, valueEntries, count * valueEntrySize);

        builder.Append('[');
        for (var i = 0; i < count; i++)
        {
            if (i > 0)
            {
                builder.Append(", ");
            }

            WriteEntry(builder, container, valueEntries + (i * valueEntrySize), large, depth);
        }

        builder.Append(']');
    }

    /// <summary>Writes the value a value entry points to; small scalars are inlined in the offset field.</summary>
    private static void WriteEntry(StringBuilder builder, ReadOnlySpan<byte> container, int entry, bool large, int depth)
    {
        var type = Slice(container, entry, 1)[0];
        var offsetField = Slice(container, entry + 1, large ? 4 : 2);
        var inlined = type is Literal or Int16 or UInt16 || (large && type is Int32 or UInt32);
        if (inlined)
        {
            WriteValue(builder, type, offsetField, depth + 1);
            return;
        }

        var offset = ReadOffset(container, entry + 1, large);
        if (offset >= container.Length)
        {
            throw new BinlogFormatException($"Binary JSON value offset {offset} is outside its container ({container.Length} bytes).");
        }

        WriteValue(builder, type, container[offset..], depth + 1);
    }

    private static void WriteLiteral(StringBuilder builder, byte literal)
    {
        builder.Append(literal switch
        {
            0 => "null",
            1 => "true",
            2 => "false",
            _ => throw new BinlogFormatException($"Unknown binary JSON literal 0x{literal:X2}."),
        });
    }

    private static void WriteDouble(StringBuilder builder, double value)
    {
        var text = value.ToString("R", CultureInfo.InvariantCulture);
        if (text.Contains('E', StringComparison.Ordinal))
        {
            text = text.Replace("E+", "e", StringComparison.Ordinal).Replace("E-", "e-", StringComparison.Ordinal);
        }
        else if (!text.Contains('.', StringComparison.Ordinal))
        {
            // MySQL keeps doubles recognisable as doubles: 3.0 prints as 3.0, not 3.
            text += ".0";
        }

        builder.Append(text);
    }

    /// <summary>Opaque values carry a MySQL column type, a variable-length size and that type's binary form.</summary>
    private static void WriteOpaque(StringBuilder builder, ReadOnlySpan<byte> data)
    {
        var fieldType = (ColumnType)Need(data, 1)[0];
        var length = ReadVariableLength(data[1..], out var used);
        var payload = Slice(data, 1 + used, length);
        switch (fieldType)
        {
            case ColumnType.NewDecimal:
            {
                var precision = Need(payload, 2)[0];
                var scale = payload[1];
                builder.Append(MySqlDecimal.ToString(payload[2..], precision, scale));
                break;
            }

            case ColumnType.Date:
                builder.Append('"').Append(MySqlTemporal.FromPackedDateTime(ReadPacked(payload)).FormatDate()).Append('"');
                break;
            case ColumnType.DateTime or ColumnType.Timestamp or ColumnType.DateTime2 or ColumnType.Timestamp2:
                builder.Append('"').Append(MySqlTemporal.FromPackedDateTime(ReadPacked(payload)).Format(6)).Append('"');
                break;
            case ColumnType.Time or ColumnType.Time2:
                builder.Append('"').Append(MySqlTemporal.FormatTime(MySqlTemporal.FromPackedTimeMicroseconds(ReadPacked(payload)), 6)).Append('"');
                break;
            default:
                builder.Append("\"base64:type")
                    .Append((int)fieldType)
                    .Append(':')
                    .Append(Convert.ToBase64String(payload))
                    .Append('"');
                break;
        }
    }

    private static long ReadPacked(ReadOnlySpan<byte> payload) => BinaryPrimitives.ReadInt64LittleEndian(Need(payload, 8));

    private static void WriteString(StringBuilder builder, string value)
    {
        builder.Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"':
                    builder.Append("\\\"");
                    break;
                case '\\':
                    builder.Append("\\\\");
                    break;
                case '\n':
                    builder.Append("\\n");
                    break;
                case '\r':
                    builder.Append("\\r");
                    break;
                case '\t':
                    builder.Append("\\t");
                    break;
                case '\b':
                    builder.Append("\\b");
                    break;
                case '\f':
                    builder.Append("\\f");
                    break;
                case < ' ':
                    builder.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    break;
                default:
                    builder.Append(c);
                    break;
            }
        }

        builder.Append('"');
    }

    /// <summary>Reads the 7-bits-per-byte length used by strings and opaque values (at most 5 bytes).</summary>
    private static int ReadVariableLength(ReadOnlySpan<byte> data, out int used)
    {
        var length = 0L;
        for (var i = 0; i < 5; i++)
        {
            var b = Need(data, i + 1)[i];
            length |= (long)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                used = i + 1;
                if (length > int.MaxValue)
                {
                    break;
                }

                return (int)length;
            }
        }

        throw new BinlogFormatException("Invalid variable-length size in binary JSON.");
    }

    private static int ReadOffset(ReadOnlySpan<byte> data, int position, bool large)
    {
        if (!large)
        {
            return BinaryPrimitives.ReadUInt16LittleEndian(Slice(data, position, 2));
        }

        var value = BinaryPrimitives.ReadUInt32LittleEndian(Slice(data, position, 4));
        return value <= int.MaxValue ? (int)value : throw new BinlogFormatException($"Binary JSON offset {value} is out of range.");
    }

    private static ReadOnlySpan<byte> Need(ReadOnlySpan<byte> data, int count) =>
        data.Length >= count ? data : throw new BinlogFormatException($"Binary JSON value truncated: needed {count} bytes, got {data.Length}.");

    private static ReadOnlySpan<byte> Slice(ReadOnlySpan<byte> data, int start, int length) =>
        start >= 0 && length >= 0 && (long)start + length <= data.Length
            ? data.Slice(start, length)
            : throw new BinlogFormatException($"Binary JSON reference [{start}, +{length}) is outside its {data.Length}-byte container.");
}
