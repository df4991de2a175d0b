using KvStore.Cdc.Events;

namespace KvStore.Cdc.Tests;

/// <summary>CRC32 verification: corruption is always reported, never decoded.</summary>
public sealed class EventsChecksumTests
{
    public static TheoryData<string> Crc32Files => new()
    {
        "mariadb-10.11-generated/binlogs/mariadb-bin.000001",
        "mariadb-10.11-generated/binlogs/mariadb-bin.000002",
        "MySqlCdc/mysql-bin.000001",
        "rust_mysql_common/mysql-enum-string-set.000001",
        "rust_mysql_common/json.binlog.000001",
    };

    [Fact]
    public void Corrupted_rows_event_byte_fails_checksum()
    {
        var parser = new BinlogEventParser();
        BinlogFileEvent? rows = null;
        foreach (var raw in BinlogFileReader.ReadAll(Fixtures.Path("mariadb-10.11-generated/binlogs/mariadb-bin.000001")))
        {
            if (raw.Bytes.Span[4] == (byte)BinlogEventType.WriteRowsV1)
            {
                rows = raw;
                break;
            }

            parser.Parse(raw.Bytes);
        }

        // The first insert of 'alpha': flip a byte inside the BIGINT id value.
        var corrupted = rows!.Value.Bytes.ToArray();
        corrupted[BinlogEventHeader.Size + 11] ^= 0x01;

        var error = Assert.Throws<BinlogFormatException>(() => parser.Parse(corrupted));
        Assert.Equal(BinlogErrorCode.ChecksumMismatch, error.Code);
        Assert.Contains("WriteRowsV1", error.Message, StringComparison.Ordinal);
        Assert.Contains("log_pos 2497", error.Message, StringComparison.Ordinal);

        // The untouched event still parses afterwards: a failed parse leaves no state behind.
        Assert.IsType<RowsEvent>(parser.Parse(rows.Value.Bytes));
    }

    [Theory]
    [MemberData(nameof(Crc32Files))]
    public void Any_flipped_byte_in_any_event_is_detected(string file)
    {
        var parser = new BinlogEventParser();
        var checkedFlips = 0;
        foreach (var raw in BinlogFileReader.ReadAll(Fixtures.Path(file)))
        {
            var original = raw.Bytes.ToArray();
            foreach (var position in SamplePositions(original.Length))
            {
                var corrupted = (byte[])original.Clone();
                corrupted[position] ^= 0xFF;
                var error = Record.Exception(() => parser.Parse(corrupted));
                Assert.True(error is BinlogFormatException, $"Flipping byte {position} of the {(BinlogEventType)original[4]} event at offset {raw.Offset} was not detected.");
                Assert.Contains("log_pos", error.Message, StringComparison.Ordinal);
                checkedFlips++;
            }

            // Advance the parser state (FDE, table maps) with the intact event.
            parser.Parse(original);
        }

        Assert.True(checkedFlips > 100);
    }

    [Fact]
    public void Corrupted_event_decodes_silently_only_when_verification_is_off()
    {
        var events = BinlogFileReader.ReadAll(Fixtures.Path("mariadb-10.11-generated/binlogs/mariadb-bin.000001")).ToList();
        var parser = new BinlogEventParser(new BinlogParserOptions { VerifyChecksums = false });
        foreach (var raw in events)
        {
            var bytes = raw.Bytes.ToArray();
            if (bytes[4] == (byte)BinlogEventType.WriteRowsV1)
            {
                bytes[BinlogEventHeader.Size + 11] ^= 0x01; // id 1 becomes 0
                var rows = Assert.IsType<RowsEvent>(parser.Parse(bytes));
                Assert.Equal(0L, rows.ToRowValues().Single().After![0]);
                return;
            }

            parser.Parse(bytes);
        }

        Assert.Fail("no WRITE_ROWS event found");
    }

    [Fact]
    public void Format_description_in_use_flag_does_not_break_its_checksum()
    {
        // The active file's FDE has LOG_EVENT_BINLOG_IN_USE_F set; its CRC was computed without it.
        var fde = Assert.IsType<FormatDescriptionEvent>(
            EventsTestData.ParseFile("mariadb-10.11-generated/binlogs/mariadb-bin.000006")[0].Event);
        Assert.Equal(1, fde.Header.Flags & 0x01);
        Assert.Equal(ChecksumAlgorithm.Crc32, fde.ChecksumAlgorithm);
    }

    [Fact]
    public void Format_description_of_a_checksum_free_file_is_still_verified()
    {
        var raw = BinlogFileReader.ReadAll(Fixtures.Path("mariadb-10.11-generated/binlogs/mariadb-bin.000004")).First().Bytes.ToArray();
        Assert.Equal(ChecksumAlgorithm.None, Assert.IsType<FormatDescriptionEvent>(new BinlogEventParser().Parse(raw)).ChecksumAlgorithm);

        // Turning CRC32 into NONE in a CRC32 file's FDE would otherwise silently disable all later checks.
        var crc32File = EventsTestData.MariaDbFormatDescription();
        crc32File[^5] = 0;
        var error = Assert.Throws<BinlogFormatException>(() => new BinlogEventParser().Parse(crc32File));
        Assert.Equal(BinlogErrorCode.ChecksumMismatch, error.Code);
    }

    [Fact]
    public void Checksum_free_events_are_accepted_after_a_none_format_description()
    {
        var events = EventsTestData.ParseFile("mariadb-10.11-generated/binlogs/mariadb-bin.000004");
        Assert.Equal(3, events.Count(e => e.Event is RowsEvent));
        Assert.Equal("mariadb-bin.000005", Assert.IsType<RotateEvent>(events[^1].Event).NextFileName);
    }

    [Fact]
    public void Wrong_length_in_the_header_is_rejected()
    {
        var parser = EventsTestData.Parser();
        var xid = EventsTestData.Event(BinlogEventType.Xid, new Bytes().U64(7).ToArray());
        Assert.IsType<XidEvent>(parser.Parse(xid));
        var error = Assert.Throws<BinlogFormatException>(() => parser.Parse(xid.AsMemory(0, xid.Length - 1)));
        Assert.Contains("header says", error.Message, StringComparison.Ordinal);
    }

    /// <summary>Every byte of small events; header, body start, end and a spread for large ones.</summary>
    private static IEnumerable<int> SamplePositions(int length)
    {
        if (length <= 300)
        {
            return Enumerable.Range(0, length);
        }

        var spread = Enumerable.Range(0, 64).Select(i => (int)((long)i * length / 64));
        return Enumerable.Range(0, 100).Concat(spread).Concat(Enumerable.Range(length - 40, 40)).Distinct().Where(p => p < length);
    }
}
