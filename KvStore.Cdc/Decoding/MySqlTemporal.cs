using System.Buffers.Binary;
using System.Globalization;

namespace KvStore.Cdc.Decoding;

/// <summary>A calendar date and wall-clock time as stored by MySQL, which also allows zero dates (0000-00-00).</summary>
internal readonly record struct MySqlDateTime(int Year, int Month, int Day, int Hour, int Minute, int Second, int Microsecond)
{
    /// <summary>True when the value can be represented by <see cref="System.DateTime"/> (no zero month/day, valid calendar date).</summary>
    public bool IsValidDate =>
        Year is >= 1 and <= 9999 && Month is >= 1 and <= 12 && Day >= 1 && Day <= DateTime.DaysInMonth(Year, Month)
        && Hour < 24 && Minute < 60 && Second < 60 && Microsecond is >= 0 and < 1_000_000;

    /// <summary>The value as a <see cref="System.DateTime"/> of the given kind; throws for zero or invalid dates.</summary>
    public DateTime ToDateTime(DateTimeKind kind)
    {
        if (!IsValidDate)
        {
            throw new InvalidOperationException(
                $"'{Format(6)}' is a zero or invalid date that DateTime cannot represent; read it with GetString.");
        }

        return new DateTime(Year, Month, Day, Hour, Minute, Second, kind).AddTicks(Microsecond * 10L);
    }

    /// <summary>'YYYY-MM-DD hh:mm:ss' plus <paramref name="fractionDigits"/> fraction digits, as MySQL prints it.</summary>
    public string Format(int fractionDigits)
    {
        var text = string.Create(
            CultureInfo.InvariantCulture,
            $"{Year:D4}-{Month:D2}-{Day:D2} {Hour:D2}:{Minute:D2}:{Second:D2}");
        return fractionDigits > 0 ? text + MySqlTemporal.FormatFraction(Microsecond, fractionDigits) : text;
    }

    /// <summary>'YYYY-MM-DD'.</summary>
    public string FormatDate() => string.Create(CultureInfo.InvariantCulture, $"{Year:D4}-{Month:D2}-{Day:D2}");
}

/// <summary>Decoders for the binary temporal formats (DATETIME2, TIMESTAMP2, TIME2, DATE and the pre-5.6.4 types).</summary>
internal static class MySqlTemporal
{
    private const long DateTimeIntOffset = 0x80_0000_0000L;
    private const int TimeIntOffset = 0x80_0000;
    private const long TimeOffset = 0x8000_0000_0000L;

    /// <summary>Bytes of the fractional part for a fractional-seconds precision of 0 to 6.</summary>
    public static int FractionBytes(int fsp) => (fsp + 1) / 2;

    /// <summary>Length of a DATETIME2 value.</summary>
    public static int DateTime2Length(int fsp) => 5 + FractionBytes(fsp);

    /// <summary>Length of a TIMESTAMP2 value.</summary>
    public static int Timestamp2Length(int fsp) => 4 + FractionBytes(fsp);

    /// <summary>Length of a TIME2 value.</summary>
    public static int Time2Length(int fsp) => 3 + FractionBytes(fsp);

    /// <summary>Decodes DATETIME2: a 40-bit big-endian packed value (offset by 2^39) and a big-endian fraction.</summary>
    public static MySqlDateTime ReadDateTime2(ReadOnlySpan<byte> value, int fsp)
    {
        long intPart = ReadBigEndian(value[..5]) - DateTimeIntOffset;
        long fraction = fsp switch
        {
            1 or 2 => (sbyte)value[5] * 10_000L,
            3 or 4 => BinaryPrimitives.ReadInt16BigEndian(value[5..]) * 100L,
            5 or 6 => ReadInt24BigEndian(value[5..]),
            _ => 0,
        };

        // The packed form is (ymdhms << 24) + microseconds; negative values only occur for corrupted data.
        var packed = (intPart << 24) + fraction;
        if (packed < 0)
        {
            packed = -packed;
        }

        var ymdhms = packed >> 24;
        var ymd = ymdhms >> 17;
        var ym = ymd >> 5;
        var hms = ymdhms % (1 << 17);
        return new MySqlDateTime(
            Year: (int)(ym / 13),
            Month: (int)(ym % 13),
            Day: (int)(ymd % 32),
            Hour: (int)(hms >> 12),
            Minute: (int)((hms >> 6) % 64),
            Second: (int)(hms % 64),
            Microsecond: (int)(packed % (1 << 24)));
    }

    /// <summary>Decodes TIMESTAMP2: big-endian Unix seconds and a big-endian fraction; returns (seconds, microseconds).</summary>
    public static (long Seconds, int Microseconds) ReadTimestamp2(ReadOnlySpan<byte> value, int fsp)
    {
        long seconds = BinaryPrimitives.ReadUInt32BigEndian(value);
        var micros = fsp switch
        {
            1 or 2 => value[4] * 10_000,
            3 or 4 => BinaryPrimitives.ReadUInt16BigEndian(value[4..]) * 100,
            5 or 6 => (value[4] << 16) | (value[5] << 8) | value[6],
            _ => 0,
        };
        return (seconds, micros);
    }

    /// <summary>
    /// Decodes TIME2 into a signed microsecond count. Negative values are stored as the two's complement of
    /// the packed form, so a negative value with a fraction borrows one second from the integer part.
    /// </summary>
    public static long ReadTime2Microseconds(ReadOnlySpan<byte> value, int fsp)
    {
        long packed;
        switch (fsp)
        {
            case 1 or 2:
                packed = PackTime(value, value[3], 0x100, 10_000);
                break;

            case 3 or 4:
                packed = PackTime(value, BinaryPrimitives.ReadUInt16BigEndian(value[3..]), 0x10000, 100);
                break;

            case 5 or 6:
                packed = ReadBigEndian(value[..6]) - TimeOffset;
                break;

            default:
                packed = (long)(ReadUInt24BigEndian(value) - TimeIntOffset) << 24;
                break;
        }

        var negative = packed < 0;
        var magnitude = negative ? -packed : packed;
        var hms = magnitude >> 24;
        var hours = (hms >> 12) % (1 << 10);
        var minutes = (hms >> 6) % 64;
        var seconds = hms % 64;
        var micros = magnitude % (1 << 24);
        var total = (((hours * 3600) + (minutes * 60) + seconds) * 1_000_000) + micros;
        return negative ? -total : total;
    }

    /// <summary>
    /// TIME2 with 1-4 fractional digits: a 3-byte integer part and a 1- or 2-byte fraction. A negative
    /// time with a fraction borrows one second from the integer part.
    /// </summary>
    private static long PackTime(ReadOnlySpan<byte> value, long fraction, long fractionRange, long scale)
    {
        long intPart = ReadUInt24BigEndian(value) - TimeIntOffset;
        if (intPart < 0 && fraction != 0)
        {
            intPart++;
            fraction -= fractionRange;
        }

        return (intPart << 24) + (fraction * scale);
    }

    /// <summary>Decodes DATE/NEWDATE: 3 bytes little-endian, day in bits 0-4, month 5-8, year above.</summary>
    public static MySqlDateTime ReadDate(ReadOnlySpan<byte> value)
    {
        var packed = value[0] | (value[1] << 8) | (value[2] << 16);
        return new MySqlDateTime(packed >> 9, (packed >> 5) & 15, packed & 31, 0, 0, 0, 0);
    }

    /// <summary>Decodes the pre-5.6.4 DATETIME: 8 bytes little-endian holding the decimal number YYYYMMDDhhmmss.</summary>
    public static MySqlDateTime ReadOldDateTime(ReadOnlySpan<byte> value)
    {
        var packed = BinaryPrimitives.ReadUInt64LittleEndian(value);
        var date = packed / 1_000_000;
        var time = packed % 1_000_000;
        return new MySqlDateTime(
            (int)(date / 10000), (int)(date % 10000 / 100), (int)(date % 100),
            (int)(time / 10000), (int)(time % 10000 / 100), (int)(time % 100), 0);
    }

    /// <summary>Decodes the pre-5.6.4 TIME: 3 bytes little-endian signed decimal number hhmmss, in microseconds.</summary>
    public static long ReadOldTimeMicroseconds(ReadOnlySpan<byte> value)
    {
        var raw = value[0] | (value[1] << 8) | (value[2] << 16);
        if ((raw & 0x80_0000) != 0)
        {
            raw |= unchecked((int)0xFF00_0000);
        }

        var magnitude = Math.Abs(raw);
        var total = (((magnitude / 10000 * 3600L) + (magnitude % 10000 / 100 * 60L) + (magnitude % 100)) * 1_000_000);
        return raw < 0 ? -total : total;
    }

    /// <summary>Decodes the packed 64-bit temporal format used inside JSON opaque values (and by MySQL internally).</summary>
    public static MySqlDateTime FromPackedDateTime(long packed)
    {
        if (packed < 0)
        {
            packed = -packed;
        }

        var ymdhms = packed >> 24;
        var ymd = ymdhms >> 17;
        var ym = ymd >> 5;
        var hms = ymdhms % (1 << 17);
        return new MySqlDateTime(
            (int)(ym / 13), (int)(ym % 13), (int)(ymd % 32),
            (int)(hms >> 12), (int)((hms >> 6) % 64), (int)(hms % 64), (int)(packed % (1 << 24)));
    }

    /// <summary>Decodes the packed 64-bit TIME format used inside JSON opaque values, in microseconds.</summary>
    public static long FromPackedTimeMicroseconds(long packed)
    {
        var negative = packed < 0;
        var magnitude = negative ? -packed : packed;
        var hms = magnitude >> 24;
        var total = ((((hms >> 12) % (1 << 10) * 3600) + ((hms >> 6) % 64 * 60) + (hms % 64)) * 1_000_000) + (magnitude % (1 << 24));
        return negative ? -total : total;
    }

    /// <summary>'[-]h:mm:ss' with at least two hour digits plus <paramref name="fractionDigits"/> fraction digits.</summary>
    public static string FormatTime(long microseconds, int fractionDigits)
    {
        var negative = microseconds < 0;
        var magnitude = negative ? -microseconds : microseconds;
        var totalSeconds = magnitude / 1_000_000;
        var text = string.Create(
            CultureInfo.InvariantCulture,
            $"{(negative ? "-" : string.Empty)}{totalSeconds / 3600:D2}:{totalSeconds / 60 % 60:D2}:{totalSeconds % 60:D2}");
        return fractionDigits > 0 ? text + FormatFraction((int)(magnitude % 1_000_000), fractionDigits) : text;
    }

    /// <summary>'.' plus the first <paramref name="digits"/> digits of the 6-digit microsecond value.</summary>
    public static string FormatFraction(int microseconds, int digits)
    {
        var six = microseconds.ToString("D6", CultureInfo.InvariantCulture);
        return "." + six[..Math.Min(digits, 6)];
    }

    private static long ReadBigEndian(ReadOnlySpan<byte> bytes)
    {
        long value = 0;
        foreach (var b in bytes)
        {
            value = (value << 8) | b;
        }

        return value;
    }

    private static int ReadUInt24BigEndian(ReadOnlySpan<byte> bytes) => (bytes[0] << 16) | (bytes[1] << 8) | bytes[2];

    private static int ReadInt24BigEndian(ReadOnlySpan<byte> bytes)
    {
        var value = ReadUInt24BigEndian(bytes);
        return (value & 0x80_0000) != 0 ? value | unchecked((int)0xFF00_0000) : value;
    }
}
