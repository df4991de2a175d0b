using System.Globalization;
using KvStore.Cdc.Events;
using KvStore.Cdc.Protocol;

namespace KvStore.Cdc.Tests;

/// <summary>
/// The parser fed with the events of captured replication streams (packet framing stripped here, in the
/// test): fake ROTATEs with and without CRC, checksum switching between files, artificial events, heartbeats.
/// </summary>
public sealed class EventsReplicationStreamTests
{
    private const string Streams = "mariadb-10.11-generated/streams/";

    public static TheoryData<string> Captures => new()
    {
        "mariadb-10.11-dump-from-position",
        "mariadb-10.11-dump-from-mid-position",
        "mariadb-10.11-dump-from-gtid",
        "mariadb-10.11-dump-annotate-flag",
        "mariadb-10.11-dump-checksum-none",
        "mariadb-10.11-dump-no-slave-capability",
        "mariadb-10.11-heartbeat-tail",
    };

    [Theory]
    [MemberData(nameof(Captures))]
    public void Every_event_of_a_capture_parses_without_configuration(string capture)
    {
        var parser = new BinlogEventParser();
        var events = 0;
        foreach (var (kind, payload) in Packets(capture))
        {
            Assert.NotEqual(0xFF, kind);
            if (kind == 0x00)
            {
                var evt = parser.Parse(payload);
                if (evt is RowsEvent rows)
                {
                    Assert.NotEmpty(rows.ToRowValues());
                }

                events++;
            }
        }

        Assert.True(events > 5);
    }

    [Fact]
    public void Position_tracking_over_a_full_dump_ends_at_the_last_file_end()
    {
        var parser = new BinlogEventParser();
        var file = string.Empty;
        ulong position = 0;
        var fakeRotates = new List<string>();
        foreach (var evt in Events("mariadb-10.11-dump-from-position", parser))
        {
            if (evt is RotateEvent rotate)
            {
                (file, position) = (rotate.NextFileName, rotate.Position);
                if (rotate.IsFake)
                {
                    fakeRotates.Add(rotate.NextFileName);
                }
            }
            else if (!evt.Header.IsArtificial && evt.Header.LogPosition != 0)
            {
                position = evt.Header.LogPosition;
            }
        }

        Assert.Equal(Enumerable.Range(1, 6).Select(i => $"mariadb-bin.00000{i}"), fakeRotates);
        Assert.Equal(("mariadb-bin.000006", 434UL), (file, position));
    }

    [Fact]
    public void Fake_rotate_without_crc_after_a_checksum_free_file_parses()
    {
        // 000005 has no checksums; the fake ROTATE for 000006 then has none either, though 000006 is CRC32.
        var parser = new BinlogEventParser();
        var sequence = Events("mariadb-10.11-dump-from-position", parser).ToList();
        var index = sequence.FindIndex(e => e is RotateEvent { IsFake: true, NextFileName: "mariadb-bin.000006" });
        Assert.Equal(BinlogEventHeader.Size + 8 + "mariadb-bin.000006".Length, (int)sequence[index].Header.EventLength);
        var fde = Assert.IsType<FormatDescriptionEvent>(sequence[index + 1]);
        Assert.Equal(ChecksumAlgorithm.Crc32, fde.ChecksumAlgorithm);
    }

    [Fact]
    public void Checksum_none_capture_parses_with_the_session_checksum_configured()
    {
        var parser = new BinlogEventParser(new BinlogParserOptions { InitialChecksum = ChecksumAlgorithm.None });
        var events = Events("mariadb-10.11-dump-checksum-none", parser).ToList();
        var first = Assert.IsType<RotateEvent>(events[0]);
        Assert.True(first.IsFake);
        Assert.Equal("mariadb-bin.000002", first.NextFileName);
        Assert.Equal(45u, first.Header.EventLength);
        Assert.Equal(ChecksumAlgorithm.Crc32, Assert.IsType<FormatDescriptionEvent>(events[1]).ChecksumAlgorithm);
        Assert.Equal(8, events.OfType<RowsEvent>().Count()); // 5 in mariadb-bin.000002, 3 in 000004
    }

    [Fact]
    public void Resumed_dump_starts_with_a_position_free_format_description()
    {
        var events = Events("mariadb-10.11-dump-from-mid-position", new BinlogEventParser()).ToList();
        Assert.Equal(2094UL, Assert.IsType<RotateEvent>(events[0]).Position);
        var fde = Assert.IsType<FormatDescriptionEvent>(events[1]);
        Assert.Equal(0u, fde.Header.LogPosition);
        Assert.Equal("0-101-6", Assert.IsType<MariaDbGtidEvent>(events[2]).Gtid.ToString());
    }

    [Fact]
    public void Gtid_dump_sends_an_artificial_gtid_list_at_the_resume_point()
    {
        var events = Events("mariadb-10.11-dump-from-gtid", new BinlogEventParser()).ToList();
        var artificial = events.OfType<MariaDbGtidListEvent>().Single(e => e.Header.IsArtificial);
        Assert.Equal(2094u, artificial.Header.LogPosition);
        Assert.Equal([new MariaDbGtid(0, 101, 5)], artificial.Gtids);
        var next = events[events.IndexOf(artificial) + 1];
        Assert.Equal("0-101-6", Assert.IsType<MariaDbGtidEvent>(next).Gtid.ToString());
    }

    [Fact]
    public void Without_slave_capability_gtid_events_arrive_as_placeholder_queries()
    {
        var events = Events("mariadb-10.11-dump-no-slave-capability", new BinlogEventParser()).ToList();
        Assert.Empty(events.OfType<MariaDbGtidEvent>());
        var queries = events.OfType<QueryEvent>().ToList();
        Assert.Contains(queries, q => q.Kind == QueryKind.Begin);
        Assert.Contains(queries, q => q.Kind == QueryKind.Dummy);
        Assert.DoesNotContain(queries, q => q.IsDdl);
    }

    [Fact]
    public void Annotate_flag_brings_annotate_rows_events()
    {
        var annotations = Events("mariadb-10.11-dump-annotate-flag", new BinlogEventParser()).OfType<AnnotateRowsEvent>().ToList();
        Assert.Contains(annotations, a => a.Sql.StartsWith("INSERT INTO kv", StringComparison.Ordinal));
        Assert.Empty(Events("mariadb-10.11-dump-checksum-none", new BinlogEventParser()).OfType<AnnotateRowsEvent>());
    }

    [Fact]
    public void Heartbeats_name_the_current_file_and_position()
    {
        var heartbeats = Events("mariadb-10.11-heartbeat-tail", new BinlogEventParser()).OfType<HeartbeatEvent>().ToList();
        Assert.NotEmpty(heartbeats);
        Assert.All(heartbeats, h =>
        {
            Assert.Equal("mariadb-bin.000006", h.LogFileName);
            Assert.Equal(434UL, h.Position);
        });
    }

    [Fact]
    public void Rows_from_the_stream_equal_rows_from_the_files()
    {
        var fromStream = Events("mariadb-10.11-dump-from-position", new BinlogEventParser()).OfType<RowsEvent>().SelectMany(Render).ToList();
        var fromFiles = Enumerable.Range(1, 6)
            .SelectMany(i => EventsTestData.EventsOf<RowsEvent>($"mariadb-10.11-generated/binlogs/mariadb-bin.00000{i}"))
            .SelectMany(Render)
            .ToList();
        Assert.Equal(fromFiles, fromStream);
    }

    private static IEnumerable<string> Render(RowsEvent rows) =>
        rows.ToRowValues().Select(r => $"{rows.Kind} {Render(r.Before)} => {Render(r.After)}");

    private static string Render(object?[]? values) => values is null
        ? "-"
        : string.Join("|", values.Select(v => v switch
        {
            null => "NULL",
            byte[] bytes => Convert.ToHexString(bytes),
            IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
            _ => v.ToString(),
        }));

    private static IEnumerable<BinlogEvent> Events(string capture, BinlogEventParser parser) =>
        Packets(capture).Where(p => p.Kind == 0x00).Select(p => parser.Parse(p.Payload));

    /// <summary>Splits a capture into packets (3-byte length, sequence id, payload) and strips the status byte.</summary>
    private static IEnumerable<(byte Kind, ReadOnlyMemory<byte> Payload)> Packets(string capture)
    {
        var data = File.ReadAllBytes(Fixtures.Path(Streams + capture + ".stream"));
        var offset = 0;
        while (offset < data.Length)
        {
            var length = data[offset] | (data[offset + 1] << 8) | (data[offset + 2] << 16);
            var payload = data.AsMemory(offset + 4, length);
            offset += 4 + length;
            yield return (payload.Span[0], payload[1..]);
        }
    }
}
