using System.Buffers.Binary;
using System.Globalization;
using KvStore.Cdc.Events;

namespace KvStore.Cdc.Decoding;

/// <summary>
/// The packed binary DECIMAL format (NEWDECIMAL): groups of 9 decimal digits in 4 big-endian bytes,
/// a shorter leading/trailing group for the remainder, the sign in the top bit of the first byte
/// (set = non-negative) and every byte inverted for negative numbers.
/// </summary>
internal static class MySqlDecimal
{
    private const int DigitsPerGroup = 9;
    private const int MaxPrecision = 65;
    private static readonly int[] BytesForDigits = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

    /// <summary>Bytes a DECIMAL(<paramref name="precision"/>, <paramref name="scale"/>) value occupies.</summary>
    public static int GetBinarySize(int precision, int scale)
    {
        Validate(precision, scale);
        var integral = precision - scale;
        return ((integral / DigitsPerGroup) * 4) + BytesForDigits[integral % DigitsPerGroup]
            + ((scale / DigitsPerGroup) * 4) + BytesForDigits[scale % DigitsPerGroup];
    }

    /// <summary>Exact text form: optional '-', integer digits without leading zeros, then exactly <paramref name="scale"/> fraction digits.</summary>
    public static string ToString(ReadOnlySpan<byte> value, int precision, int scale)
    {
        var size = GetBinarySize(precision, scale);
        if (value.Length < size)
        {
            throw new BinlogFormatException($"DECIMAL({precision},{scale}) needs {size} bytes, got {value.Length}.");
        }

        Span<byte> bytes = stackalloc byte[size];
        value[..size].CopyTo(bytes);
        var negative = (bytes[0] & 0x80) == 0;
        bytes[0] ^= 0x80;
        if (negative)
        {
            for (var i = 0; i < bytes.Length; i++)
            {
                bytes[i] = (byte)~bytes[i];
            }
        }

        var integral = precision - scale;
        var leadingDigits = integral % DigitsPerGroup;
        var fullIntegralGroups = integral / DigitsPerGroup;
        var fullFractionGroups = scale / DigitsPerGroup;
        var trailingDigits = scale % DigitsPerGroup;

        Span<char> text = stackalloc char[MaxPrecision + 3];
        var length = 0;
        if (negative)
        {
            text[length++] = '-';
        }

        var position = 0;
        var integralStart = length;
        var significant = false;
        if (leadingDigits > 0)
        {
            var size0 = BytesForDigits[leadingDigits];
            var group = ReadBigEndian(bytes.Slice(position, size0));
            position += size0;
            AppendIntegralGroup(text, ref length, group, leadingDigits, ref significant);
        }

        for (var g = 0; g < fullIntegralGroups; g++)
        {
            var group = ReadBigEndian(bytes.Slice(position, 4));
            position += 4;
            AppendIntegralGroup(text, ref length, group, DigitsPerGroup, ref significant);
        }

        if (length == integralStart)
        {
            text[length++] = '0';
        }

        if (scale > 0)
        {
            text[length++] = '.';
            for (var g = 0; g < fullFractionGroups; g++)
            {
                var group = ReadBigEndian(bytes.Slice(position, 4));
                position += 4;
                AppendPadded(text, ref length, group, DigitsPerGroup);
            }

            if (trailingDigits > 0)
            {
                var group = ReadBigEndian(bytes.Slice(position, BytesForDigits[trailingDigits]));
                AppendPadded(text, ref length, group, trailingDigits);
            }
        }

        return new string(text[..length]);
    }

    /// <summary>The value as <see cref="decimal"/>; throws <see cref="OverflowException"/> beyond 28-29 significant digits.</summary>
    public static decimal ToDecimal(ReadOnlySpan<byte> value, int precision, int scale) =>
        decimal.Parse(ToString(value, precision, scale), NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture);

    private static void Validate(int precision, int scale)
    {
        if (precision is < 1 or > MaxPrecision || scale < 0 || scale > precision)
        {
            throw new BinlogFormatException($"Invalid DECIMAL metadata: precision {precision}, scale {scale}.");
        }
    }

    private static uint ReadBigEndian(ReadOnlySpan<byte> bytes) => bytes.Length switch
    {
        1 => bytes[0],
        2 => BinaryPrimitives.ReadUInt16BigEndian(bytes),
        3 => (uint)((bytes[0] << 16) | (bytes[1] << 8) | bytes[2]),
        _ => BinaryPrimitives.ReadUInt32BigEndian(bytes),
    };

    private static void AppendIntegralGroup(Span<char> text, ref int length, uint group, int digits, ref bool significant)
    {
        if (group >= Pow10(digits))
        {
            throw new BinlogFormatException($"Corrupted DECIMAL digit group {group}.");
        }

        if (significant)
        {
            AppendPadded(text, ref length, group, digits);
        }
        else if (group != 0)
        {
            group.TryFormat(text[length..], out var written, default, CultureInfo.InvariantCulture);
            length += written;
            significant = true;
        }
    }

    private static void AppendPadded(Span<char> text, ref int length, uint group, int digits)
    {
        if (group >= Pow10(digits))
        {
            throw new BinlogFormatException($"Corrupted DECIMAL digit group {group}.");
        }

        for (var i = digits - 1; i >= 0; i--)
        {
            text[length + i] = (char)('0' + (group % 10));
            group /= 10;
        }

        length += digits;
    }

    private static uint Pow10(int digits)
    {
        uint result = 1;
        for (var i = 0; i < digits; i++)
        {
            result *= 10;
        }

        return result;
    }
}
