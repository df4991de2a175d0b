using System.Globalization;
using KvStore.Cdc.Decoding;

namespace KvStore.Cdc.Tests;

/// <summary>DATETIME2, TIMESTAMP2, TIME2, DATE, YEAR and the pre-5.6.4 temporal formats from hand-built bytes.</summary>
public sealed class DecodingTemporalTests
{
    private static readonly DateTime Sample = new DateTime(2024, 1, 2, 3, 4, 5).AddTicks(1_234_560);
    [Fact]
    public void Datetime2_with_microseconds_decodes_the_documented_example()
    {
        var column = EventsTestData.Column(ColumnType.DateTime2, 6);
        var value = Convert.FromHexString("99B2443105" + "01E240");
        Assert.Equal(8, column.Decoder.GetLength(value, column));
        Assert.Equal(Sample, column.Decoder.GetDateTime(value, column));
        Assert.Equal(DateTimeKind.Unspecified, column.Decoder.GetDateTime(value, column).Kind);
        Assert.Equal("2024-01-02 03:04:05.123456", column.Decoder.GetString(value, column));
    }

    [Theory]
    [InlineData(0, "", "2024-01-02 03:04:05")]
    [InlineData(1, "0A", "2024-01-02 03:04:05.1")]
    [InlineData(2, "0C", "2024-01-02 03:04:05.12")]
    [InlineData(3, "04CE", "2024-01-02 03:04:05.123")]
    [InlineData(4, "04D2", "2024-01-02 03:04:05.1234")]
    [InlineData(5, "01E23A", "2024-01-02 03:04:05.12345")]
    [InlineData(6, "01E240", "2024-01-02 03:04:05.123456")]
    public void Datetime2_fraction_width_follows_the_precision(int fsp, string fractionHex, string text)
    {
        // (fsp + 1) / 2 fraction bytes: centiseconds (fsp 1-2), 1/10000 s (3-4) or microseconds (5-6).
        var column = EventsTestData.Column(ColumnType.DateTime2, fsp);
        var value = Convert.FromHexString("99B2443105" + fractionHex);
        Assert.Equal(5 + ((fsp + 1) / 2), column.Decoder.GetLength(value, column));
        var format = fsp == 0 ? "yyyy-MM-dd HH:mm:ss" : "yyyy-MM-dd HH:mm:ss." + new string('f', fsp);
        Assert.Equal(DateTime.ParseExact(text, format, CultureInfo.InvariantCulture), column.Decoder.GetDateTime(value, column));
        Assert.Equal(text, column.Decoder.GetString(value, column));
    }

    [Fact]
    public void Zero_datetime_reads_as_text_only()
    {
        var column = EventsTestData.Column(ColumnType.DateTime2, 0);
        var zero = Convert.FromHexString("8000000000");
        Assert.Equal("0000-00-00 00:00:00", column.Decoder.GetString(zero, column));
        Assert.Equal("0000-00-00 00:00:00", column.Decoder.GetValue(zero, column));
        Assert.Throws<InvalidOperationException>(() => column.Decoder.GetDateTime(zero, column));
    }

    [Theory]
    [InlineData(0, "7FFFFFFF", 2147483647L, 0)]
    [InlineData(3, "7FFFFFFF" + "2706", 2147483647L, 999_000)]
    [InlineData(6, "00000001" + "000001", 1L, 1)]
    [InlineData(2, "3B9ACA00" + "32", 1_000_000_000L, 500_000)]
    public void Timestamp2_is_a_utc_instant(int fsp, string hex, long seconds, int micros)
    {
        var column = EventsTestData.Column(ColumnType.Timestamp2, fsp);
        var value = Convert.FromHexString(hex);
        Assert.Equal(4 + ((fsp + 1) / 2), column.Decoder.GetLength(value, column));
        var expected = DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(micros * 10L);
        Assert.Equal(expected, column.Decoder.GetDateTimeOffset(value, column));
        Assert.Equal(TimeSpan.Zero, column.Decoder.GetDateTimeOffset(value, column).Offset);
        Assert.Equal(expected.UtcDateTime, column.Decoder.GetDateTime(value, column));
        Assert.Equal(seconds, column.Decoder.GetInt64(value, column));
    }

    [Fact]
    public void Zero_timestamp_is_not_an_instant()
    {
        var column = EventsTestData.Column(ColumnType.Timestamp2, 3);
        var zero = Convert.FromHexString("000000000000");
        Assert.Equal("0000-00-00 00:00:00.000", column.Decoder.GetString(zero, column));
        Assert.Throws<InvalidOperationException>(() => column.Decoder.GetDateTimeOffset(zero, column));
    }

    [Theory]
    [InlineData(0, "B46EFB", "838:59:59", 3_020_399_000_000L)]
    [InlineData(0, "800000", "00:00:00", 0L)]
    [InlineData(1, "7FFFFECE", "-00:00:01.5", -1_500_000L)]
    [InlineData(3, "7FFFFEEC78", "-00:00:01.500", -1_500_000L)]
    [InlineData(6, "7FFFFEF85EE0", "-00:00:01.500000", -1_500_000L)]
    [InlineData(6, "80000107A120", "00:00:01.500000", 1_500_000L)]
    public void Time2_handles_negative_values_with_fractions(int fsp, string hex, string text, long microseconds)
    {
        var column = EventsTestData.Column(ColumnType.Time2, fsp);
        var value = Convert.FromHexString(hex);
        Assert.Equal(3 + ((fsp + 1) / 2), column.Decoder.GetLength(value, column));
        Assert.Equal(text, column.Decoder.GetString(value, column));
        Assert.Equal(TimeSpan.FromTicks(microseconds * 10), column.Decoder.GetTimeSpan(value, column));
    }

    [Fact]
    public void Date_decodes_to_calendar_date()
    {
        var column = EventsTestData.Column(ColumnType.Date);
        var value = Convert.FromHexString("72B80F");
        Assert.Equal(new DateTime(2012, 3, 18), column.Decoder.GetDateTime(value, column));
        Assert.Equal(new DateOnly(2012, 3, 18), column.Decoder.GetValue(value, column));
        Assert.Equal("2012-03-18", column.Decoder.GetString(value, column));
        Assert.Equal("0000-00-00", column.Decoder.GetValue([0, 0, 0], column));
    }

    [Fact]
    public void Year_zero_stays_zero()
    {
        var column = EventsTestData.Column(ColumnType.Year);
        Assert.Equal(2024, column.Decoder.GetInt64([124], column));
        Assert.Equal(0, column.Decoder.GetInt64([0], column));
        Assert.Equal("0000", column.Decoder.GetString([0], column));
    }

    [Fact]
    public void Pre_5_6_temporal_formats_decode()
    {
        var datetime = EventsTestData.Column(ColumnType.DateTime);
        Assert.Equal(new DateTime(2024, 1, 2, 3, 4, 5), datetime.Decoder.GetDateTime(Convert.FromHexString("457C178468120000"), datetime));

        var time = EventsTestData.Column(ColumnType.Time);
        Assert.Equal("-838:59:59", time.Decoder.GetString(Convert.FromHexString("590A80"), time));

        var timestamp = EventsTestData.Column(ColumnType.Timestamp);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_000_000_000), timestamp.Decoder.GetDateTimeOffset(BitConverter.GetBytes(1_000_000_000), timestamp));
    }
}
