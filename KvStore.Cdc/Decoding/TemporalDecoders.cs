using System.Buffers.Binary;
using System.Globalization;
using KvStore.Cdc.Events;

namespace KvStore.Cdc.Decoding;

/// <summary>DATETIME: DATETIME2 (fsp in metadata) or the pre-5.6.4 8-byte form. Read as <see cref="DateTimeKind.Unspecified"/> wall-clock time.</summary>
internal sealed class DateTimeDecoder : ColumnDecoder
{
    private readonly bool _legacy;

    public DateTimeDecoder(bool legacy)
        : base("DATETIME", legacy ? 0 : 1)
    {
        _legacy = legacy;
    }

    public override int GetLength(ReadOnlySpan<byte> data, TableColumn column) =>
        _legacy ? 8 : MySqlTemporal.DateTime2Length(column.Length);

    public override DateTime GetDateTime(ReadOnlySpan<byte> value, TableColumn column) =>
        Read(value, column).ToDateTime(DateTimeKind.Unspecified);

    public override string GetString(ReadOnlySpan<byte> value, TableColumn column) =>
        Read(value, column).Format(_legacy ? 0 : column.Length);

    /// <summary><see cref="DateTime"/>, or the MySQL text for zero/invalid dates that DateTime cannot hold.</summary>
    public override object GetValue(ReadOnlySpan<byte> value, TableColumn column)
    {
        var parts = Read(value, column);
        return parts.IsValidDate ? parts.ToDateTime(DateTimeKind.Unspecified) : parts.Format(_legacy ? 0 : column.Length);
    }

    private MySqlDateTime Read(ReadOnlySpan<byte> value, TableColumn column) =>
        _legacy ? MySqlTemporal.ReadOldDateTime(value) : MySqlTemporal.ReadDateTime2(value, column.Length);
}

/// <summary>TIMESTAMP: TIMESTAMP2 (fsp in metadata) or the pre-5.6.4 4-byte form; Unix seconds, so always UTC.</summary>
internal sealed class TimestampDecoder : ColumnDecoder
{
    private const string ZeroTimestamp = "0000-00-00 00:00:00";
    private readonly bool _legacy;

    public TimestampDecoder(bool legacy)
        : base("TIMESTAMP", legacy ? 0 : 1)
    {
        _legacy = legacy;
    }

    public override int GetLength(ReadOnlySpan<byte> data, TableColumn column) =>
        _legacy ? 4 : MySqlTemporal.Timestamp2Length(column.Length);

    /// <summary>UTC instant; throws for the zero timestamp (stored as 0 seconds), which is not an instant.</summary>
    public override DateTimeOffset GetDateTimeOffset(ReadOnlySpan<byte> value, TableColumn column)
    {
        var (seconds, micros) = Read(value, column);
        if (seconds == 0 && micros == 0)
        {
            throw new InvalidOperationException($"Column {column.QualifiedName} holds the zero timestamp '{ZeroTimestamp}'; read it with GetString.");
        }

        return DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(micros * 10L);
    }

    public override DateTime GetDateTime(ReadOnlySpan<byte> value, TableColumn column) => GetDateTimeOffset(value, column).UtcDateTime;

    /// <summary>Unix seconds.</summary>
    public override long GetInt64(ReadOnlySpan<byte> value, TableColumn column) => Read(value, column).Seconds;

    /// <summary>'YYYY-MM-DD hh:mm:ss[.fff]' in UTC.</summary>
    public override string GetString(ReadOnlySpan<byte> value, TableColumn column)
    {
        var (seconds, micros) = Read(value, column);
        var fsp = _legacy ? 0 : column.Length;
        if (seconds == 0 && micros == 0)
        {
            return fsp > 0 ? ZeroTimestamp + MySqlTemporal.FormatFraction(0, fsp) : ZeroTimestamp;
        }

        var text = DateTimeOffset.FromUnixTimeSeconds(seconds).ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
        return fsp > 0 ? text + MySqlTemporal.FormatFraction(micros, fsp) : text;
    }

    public override object GetValue(ReadOnlySpan<byte> value, TableColumn column)
    {
        var (seconds, micros) = Read(value, column);
        return seconds == 0 && micros == 0 ? GetString(value, column) : GetDateTimeOffset(value, column);
    }

    /// <summary>Unix seconds and microseconds.</summary>
    public (long Seconds, int Microseconds) Read(ReadOnlySpan<byte> value, TableColumn column) => _legacy
        ? (BinaryPrimitives.ReadUInt32LittleEndian(value), 0)
        : MySqlTemporal.ReadTimestamp2(value, column.Length);
}

/// <summary>TIME: TIME2 (fsp in metadata, may be negative, up to ±838:59:59) or the pre-5.6.4 3-byte form.</summary>
internal sealed class TimeDecoder : ColumnDecoder
{
    private readonly bool _legacy;

    public TimeDecoder(bool legacy)
        : base("TIME", legacy ? 0 : 1)
    {
        _legacy = legacy;
    }

    public override int GetLength(ReadOnlySpan<byte> data, TableColumn column) =>
        _legacy ? 3 : MySqlTemporal.Time2Length(column.Length);

    public override TimeSpan GetTimeSpan(ReadOnlySpan<byte> value, TableColumn column) =>
        TimeSpan.FromTicks(Microseconds(value, column) * 10);

    public override string GetString(ReadOnlySpan<byte> value, TableColumn column) =>
        MySqlTemporal.FormatTime(Microseconds(value, column), _legacy ? 0 : column.Length);

    public override object GetValue(ReadOnlySpan<byte> value, TableColumn column) => GetTimeSpan(value, column);

    private long Microseconds(ReadOnlySpan<byte> value, TableColumn column) => _legacy
        ? MySqlTemporal.ReadOldTimeMicroseconds(value)
        : MySqlTemporal.ReadTime2Microseconds(value, column.Length);
}

/// <summary>DATE (and NEWDATE): 3 bytes little-endian packed year/month/day.</summary>
internal sealed class DateDecoder : ColumnDecoder
{
    public DateDecoder()
        : base("DATE", 0)
    {
    }

    public override int GetLength(ReadOnlySpan<byte> data, TableColumn column) => 3;

    public override DateTime GetDateTime(ReadOnlySpan<byte> value, TableColumn column) =>
        MySqlTemporal.ReadDate(value).ToDateTime(DateTimeKind.Unspecified);

    public override string GetString(ReadOnlySpan<byte> value, TableColumn column) => MySqlTemporal.ReadDate(value).FormatDate();

    /// <summary><see cref="DateOnly"/>, or the text for zero/invalid dates.</summary>
    public override object GetValue(ReadOnlySpan<byte> value, TableColumn column)
    {
        var parts = MySqlTemporal.ReadDate(value);
        return parts.IsValidDate ? new DateOnly(parts.Year, parts.Month, parts.Day) : parts.FormatDate();
    }
}
