using KvStore.Cdc.Decoding;
using KvStore.Cdc.Events;
using KvStore.Cdc.Protocol;

namespace KvStore.Cdc.Tests;

/// <summary>Event-level parsing with hand-built events: dispatch, state (FDE, table maps) and the small event types.</summary>
public sealed class EventsParserTests
{
    [Fact]
    public void Unknown_event_type_is_returned_not_rejected()
    {
        var parser = EventsTestData.Parser();
        var evt = parser.Parse(EventsTestData.Event((BinlogEventType)0x7E, [1, 2, 3]));
        var unknown = Assert.IsType<UnknownEvent>(evt);
        Assert.Equal(new byte[] { 1, 2, 3 }, unknown.Body.ToArray());
    }

    [Fact]
    public void Statement_based_events_are_skipped_as_unknown()
    {
        var parser = EventsTestData.Parser();
        Assert.IsType<UnknownEvent>(parser.Parse(EventsTestData.Event(BinlogEventType.Intvar, new Bytes().U8(2).U64(5).ToArray())));
        Assert.IsType<UnknownEvent>(parser.Parse(EventsTestData.Event(BinlogEventType.XaPrepare, new Bytes().U8(1).U32(0).U32(1).U32(1).Utf8("xy").ToArray())));
    }

    [Fact]
    public void Events_before_any_format_description_are_rejected_except_rotate()
    {
        var parser = new BinlogEventParser();
        var error = Assert.Throws<BinlogFormatException>(() => parser.Parse(EventsTestData.Event(BinlogEventType.Xid, new Bytes().U64(1).ToArray())));
        Assert.Contains("before any FORMAT_DESCRIPTION", error.Message, StringComparison.Ordinal);

        var withCrc = Assert.IsType<RotateEvent>(parser.Parse(EventsTestData.Event(BinlogEventType.Rotate, new Bytes().U64(4).Utf8("bin.000007").ToArray(), logPosition: 0, flags: 0x20)));
        Assert.Equal("bin.000007", withCrc.NextFileName);
        Assert.True(withCrc.IsFake);
        var withoutCrc = Assert.IsType<RotateEvent>(parser.Parse(EventsTestData.Event(BinlogEventType.Rotate, new Bytes().U64(4).Utf8("bin.000008").ToArray(), logPosition: 0, crc: false)));
        Assert.Equal("bin.000008", withoutCrc.NextFileName);
    }

    [Fact]
    public void Configured_initial_checksum_applies_to_the_opening_rotate()
    {
        var rotate = EventsTestData.Event(BinlogEventType.Rotate, new Bytes().U64(4).Utf8("bin.000001").ToArray(), logPosition: 0, crc: false);
        var none = new BinlogEventParser(new BinlogParserOptions { InitialChecksum = ChecksumAlgorithm.None });
        Assert.Equal("bin.000001", Assert.IsType<RotateEvent>(none.Parse(rotate)).NextFileName);

        var crc32 = new BinlogEventParser(new BinlogParserOptions { InitialChecksum = ChecksumAlgorithm.Crc32 });
        Assert.Equal(BinlogErrorCode.ChecksumMismatch, Assert.Throws<BinlogFormatException>(() => crc32.Parse(rotate)).Code);
    }

    [Fact]
    public void Format_description_sets_checksum_and_post_header_lengths()
    {
        var parser = new BinlogEventParser();
        var fde = Assert.IsType<FormatDescriptionEvent>(parser.Parse(EventsTestData.MariaDbFormatDescription()));
        Assert.Equal("10.11.19-MariaDB-0+deb12u1-log", fde.ServerVersion);
        Assert.True(fde.IsMariaDb);
        Assert.Equal(ChecksumAlgorithm.Crc32, fde.ChecksumAlgorithm);
        Assert.Equal(8, fde.GetPostHeaderLength(BinlogEventType.TableMap));
        Assert.Equal(13, fde.GetPostHeaderLength(BinlogEventType.Query));
        Assert.Same(fde, parser.FormatDescription);
        Assert.Equal(ChecksumAlgorithm.Crc32, parser.ChecksumAlgorithm);

        var mysql = Assert.IsType<FormatDescriptionEvent>(new BinlogEventParser().Parse(EventsTestData.MySqlFormatDescription()));
        Assert.False(mysql.IsMariaDb);
        Assert.Equal(10, mysql.GetPostHeaderLength(BinlogEventType.WriteRowsV2));
    }

    [Fact]
    public void Rows_event_without_table_map_fails_with_missing_table_map()
    {
        var parser = EventsTestData.Parser();
        var rows = EventsTestData.Event(BinlogEventType.WriteRowsV1, EventsTestData.WriteRowsBody(99, 1, [0, 1]));
        var error = Assert.Throws<BinlogFormatException>(() => parser.Parse(rows));
        Assert.Equal(BinlogErrorCode.MissingTableMap, error.Code);
        Assert.Contains("table id 99", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Ddl_query_invalidates_the_table_map_cache()
    {
        var parser = EventsTestData.Parser();
        var tableMap = EventsTestData.Event(BinlogEventType.TableMap, EventsTestData.TableMapBody(7, "db", "t", [(byte)ColumnType.Tiny], []));
        var rows = EventsTestData.Event(BinlogEventType.WriteRowsV1, EventsTestData.WriteRowsBody(7, 1, [0, 42]));
        parser.Parse(tableMap);
        Assert.Equal(42, (sbyte)((RowsEvent)parser.Parse(rows)).ToRowValues().Single().After![0]!);

        var begin = Assert.IsType<QueryEvent>(parser.Parse(Query("BEGIN")));
        Assert.False(begin.IsDdl);
        Assert.True(parser.TryGetTableMap(7, out _));

        var ddl = Assert.IsType<QueryEvent>(parser.Parse(Query("ALTER TABLE t ADD COLUMN x INT")));
        Assert.True(ddl.IsDdl);
        Assert.False(parser.TryGetTableMap(7, out _));
        Assert.Equal(BinlogErrorCode.MissingTableMap, Assert.Throws<BinlogFormatException>(() => parser.Parse(rows)).Code);
    }

    [Fact]
    public void Repeated_identical_table_map_reuses_the_parsed_definition()
    {
        var parser = EventsTestData.Parser();
        var body = EventsTestData.TableMapBody(7, "db", "t", [(byte)ColumnType.Long], [], optional: new Bytes().U8(4).Packed(3).PackedString("id").ToArray());
        var first = (TableMapEvent)parser.Parse(EventsTestData.Event(BinlogEventType.TableMap, body, logPosition: 100));
        var second = (TableMapEvent)parser.Parse(EventsTestData.Event(BinlogEventType.TableMap, body, logPosition: 200));
        Assert.NotSame(first, second);
        Assert.Same(first.Definition, second.Definition);
        Assert.Equal(200u, second.Header.LogPosition);

        var changed = EventsTestData.TableMapBody(7, "db", "t", [(byte)ColumnType.LongLong], [], optional: new Bytes().U8(4).Packed(3).PackedString("id").ToArray());
        var third = (TableMapEvent)parser.Parse(EventsTestData.Event(BinlogEventType.TableMap, changed));
        Assert.NotSame(first.Definition, third.Definition);
        Assert.Equal(ColumnType.LongLong, third.Columns[0].Type);
    }

    [Theory]
    [InlineData("BEGIN", "Begin")]
    [InlineData("COMMIT", "Commit")]
    [InlineData("ROLLBACK", "Rollback")]
    [InlineData("ROLLBACK TO SAVEPOINT s1", "Savepoint")]
    [InlineData("SAVEPOINT s1", "Savepoint")]
    [InlineData("XA START X'01'", "Xa")]
    [InlineData("# Dummy event replacing event type 160 that slave cannot handle.", "Dummy")]
    [InlineData("  create table t (id int)", "Statement")]
    [InlineData("TRUNCATE TABLE kv", "Statement")]
    public void Query_events_are_classified(string sql, string kind)
    {
        var query = Assert.IsType<QueryEvent>(EventsTestData.Parser().Parse(Query(sql, "kvdb")));
        Assert.Equal(Enum.Parse<QueryKind>(kind), query.Kind);
        Assert.Equal(sql, query.Sql);
        Assert.Equal("kvdb", query.DatabaseName);
    }

    [Fact]
    public void MariaDb_gtid_event_parses_by_length_and_ignores_its_tail()
    {
        var parser = EventsTestData.Parser();
        var body = new Bytes().U64(6).U32(0).U8(0x0C).Raw(new byte[6]).Raw(0xAA, 0xBB, 0xCC).ToArray();
        var gtid = Assert.IsType<MariaDbGtidEvent>(parser.Parse(EventsTestData.Event(BinlogEventType.MariaDbGtid, body, serverId: 101)));
        Assert.Equal(new MariaDbGtid(0, 101, 6), gtid.Gtid);
        Assert.Equal("0-101-6", gtid.Gtid.ToString());
        Assert.True(gtid.IsTransactional);
        Assert.False(gtid.IsStandalone);

        var withCommitId = new Bytes().U64(9).U32(3).U8(0x02 | 0x01 | 0x20).U64(12345).ToArray();
        var ddl = Assert.IsType<MariaDbGtidEvent>(parser.Parse(EventsTestData.Event(BinlogEventType.MariaDbGtid, withCommitId, serverId: 7)));
        Assert.Equal("3-7-9", ddl.Gtid.ToString());
        Assert.Equal(12345UL, ddl.CommitId);
        Assert.True(ddl.IsDdl && ddl.IsStandalone);
    }

    [Fact]
    public void MariaDb_gtid_list_lists_every_domain()
    {
        // The example from the MariaDB knowledge base: [0-10124-3584].
        var body = new Bytes().Hex("01000000 00000000 8c270000 000e000000000000").ToArray();
        var list = Assert.IsType<MariaDbGtidListEvent>(EventsTestData.Parser().Parse(EventsTestData.Event(BinlogEventType.MariaDbGtidList, body)));
        Assert.Equal([new MariaDbGtid(0, 10124, 3584)], list.Gtids);
    }

    [Fact]
    public void MySql_gtid_event_keeps_the_uuid_in_text_order()
    {
        var body = new Bytes().U8(1).Hex("97c7af024c5011ecacd8681842034964").U64(5).U8(2).U64(3).U64(4).Raw(new byte[20]).ToArray();
        var gtid = Assert.IsType<MySqlGtidEvent>(EventsTestData.Parser(mariaDb: false).Parse(EventsTestData.Event(BinlogEventType.MySqlGtid, body)));
        Assert.Equal("97c7af02-4c50-11ec-acd8-681842034964:5", gtid.Gtid);
        Assert.False(gtid.IsAnonymous);
        Assert.Equal(3L, gtid.LastCommitted);
        Assert.Equal(4L, gtid.SequenceNumber);

        var gtids = EventsTestData.EventsOf<MySqlGtidEvent>("rust_mysql_common/binlog-invisible-columns.000001");
        Assert.Equal(Enumerable.Range(1, 5).Select(i => $"97c7af02-4c50-11ec-acd8-681842034964:{i}"), gtids.Select(g => g.Gtid));
    }

    [Fact]
    public void Heartbeats_carry_the_current_file_and_position()
    {
        var parser = EventsTestData.Parser(mariaDb: false);
        var v1 = Assert.IsType<HeartbeatEvent>(parser.Parse(EventsTestData.Event(BinlogEventType.Heartbeat, new Bytes().Utf8("binlog.000001").ToArray(), logPosition: 434)));
        Assert.Equal("binlog.000001", v1.LogFileName);
        Assert.Equal(434UL, v1.Position);

        var body = new Bytes().U8(1).Packed(13).Utf8("binlog.000001").U8(2).Packed(1).U8(0x9E).U8(0).ToArray();
        var v2 = Assert.IsType<HeartbeatEvent>(parser.Parse(EventsTestData.Event(BinlogEventType.HeartbeatV2, body, logPosition: 0)));
        Assert.Equal("binlog.000001", v2.LogFileName);
        Assert.Equal(158UL, v2.Position);
    }

    [Fact]
    public void Rows_query_annotate_checkpoint_and_incident_events_parse()
    {
        var parser = EventsTestData.Parser();
        Assert.Equal("INSERT INTO t VALUES (1)", Assert.IsType<RowsQueryEvent>(parser.Parse(EventsTestData.Event(BinlogEventType.RowsQuery, new Bytes().U8(24).Utf8("INSERT INTO t VALUES (1)").ToArray()))).Sql);
        var annotate = Assert.IsType<AnnotateRowsEvent>(parser.Parse(EventsTestData.Event(BinlogEventType.MariaDbAnnotateRows, new Bytes().Utf8("DELETE FROM t").ToArray())));
        Assert.Equal("DELETE FROM t"u8.ToArray(), annotate.SqlUtf8.ToArray());
        Assert.Equal("DELETE FROM t", annotate.Sql);
        Assert.Equal("mariadb-bin.000004", Assert.IsType<BinlogCheckpointEvent>(parser.Parse(EventsTestData.Event(BinlogEventType.MariaDbBinlogCheckpoint, new Bytes().U32(18).Utf8("mariadb-bin.000004").ToArray()))).LogFileName);
        var incident = Assert.IsType<IncidentEvent>(parser.Parse(EventsTestData.Event(BinlogEventType.Incident, new Bytes().U16(1).U8(4).Utf8("lost").ToArray())));
        Assert.Equal(1, incident.Incident);
        Assert.Equal("lost", incident.Message);
    }

    [Theory]
    [InlineData((int)BinlogEventType.TransactionPayload, "binlog_transaction_compression=OFF")]
    [InlineData((int)BinlogEventType.MySqlGtidTagged, "GTID tags")]
    [InlineData((int)BinlogEventType.MariaDbQueryCompressed, "log_bin_compress=OFF")]
    [InlineData((int)BinlogEventType.MariaDbWriteRowsCompressedV1, "log_bin_compress=OFF")]
    [InlineData((int)BinlogEventType.PartialUpdateRows, "binlog_row_value_options")]
    public void Encoding_changing_events_are_returned_as_unsupported_with_the_server_setting(int typeCode, string remedy)
    {
        var type = (BinlogEventType)typeCode;
        var parser = EventsTestData.Parser();
        parser.Parse(EventsTestData.Event(BinlogEventType.TableMap, EventsTestData.TableMapBody(7, "db", "t", [(byte)ColumnType.Tiny], [])));
        var unsupported = Assert.IsType<UnsupportedEvent>(parser.Parse(EventsTestData.Event(type, new Bytes().U48(7).U16(1).Raw(1, 2, 3).ToArray())));
        var error = unsupported.CreateException();
        Assert.Equal(BinlogErrorCode.UnsupportedFeature, error.Code);
        Assert.Contains(remedy, error.Message, StringComparison.Ordinal);
        var isRowsEvent = type is BinlogEventType.PartialUpdateRows or BinlogEventType.MariaDbWriteRowsCompressedV1;
        Assert.Equal(isRowsEvent, unsupported.TableMap is not null);
        if (isRowsEvent)
        {
            Assert.Contains("db.t", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Table_map_optional_metadata_is_read_and_unknown_fields_are_skipped()
    {
        var optional = new Bytes()
            .U8(1).Packed(1).U8(0b0100_0000)                      // SIGNEDNESS: 2nd numeric column unsigned
            .U8(2).Packed(3).Packed(45).Packed(1).Packed(8)       // DEFAULT_CHARSET 45, char column #1 uses 8
            .U8(4).Packed(10).PackedString("a").PackedString("b").PackedString("c").PackedString("d").PackedString("e")
            .U8(99).Packed(3).Raw(9, 9, 9)                        // a future metadata type
            .U8(9).Packed(4).Packed(1).Packed(0).Packed(3).Packed(10) // PRIMARY_KEY_WITH_PREFIX: b, d(10)
            .U8(12).Packed(1).U8(0b1011_0000)                     // COLUMN_VISIBILITY: c invisible
            .ToArray();
        byte[] types = [(byte)ColumnType.Long, (byte)ColumnType.VarChar, (byte)ColumnType.LongLong, (byte)ColumnType.VarChar, (byte)ColumnType.Tiny];
        var metadata = new Bytes().U16(40).U16(300).ToArray();
        var map = Assert.IsType<TableMapEvent>(EventsTestData.Parser().Parse(EventsTestData.Event(
            BinlogEventType.TableMap, EventsTestData.TableMapBody(3, "db", "t", types, metadata, nullBitmap: [0b10], optional: optional))));

        Assert.Null(map.DecodeError);
        Assert.Equal([false, false, true, false, false], map.Columns.Select(c => c.IsUnsigned));
        Assert.Equal([0, 45, 0, 8, 0], map.Columns.Select(c => c.CollationId));
        Assert.Equal(["a", "b", "c", "d", "e"], map.ColumnNames!);
        Assert.Equal([1, 3], map.PrimaryKey);
        Assert.Equal(10, map.Columns[3].PrimaryKeyPrefixLength);
        Assert.Equal([true, false, true, true, false], map.Columns.Select(c => c.IsVisible));
        Assert.Equal([false, true, false, false, false], map.Columns.Select(c => c.IsNullable));
        Assert.Equal(300, map.Columns[3].Length);
        Assert.Equal(3, map.IndexOf("D"));
    }

    [Fact]
    public void Table_map_of_an_old_server_with_four_byte_table_ids_parses()
    {
        var parser = EventsTestData.Parser();
        var fde = EventsTestData.MariaDbFormatDescription();

        // Post-header lengths start at body offset 57; TABLE_MAP is type 19, ROWS v1 types 23-25.
        fde[BinlogEventHeader.Size + 57 + 18] = 6;
        fde[BinlogEventHeader.Size + 57 + 22] = 6;
        parser.Parse(EventsTestData.Reseal(fde));
        var tableMapBody = new Bytes().U32(9).U16(1).U8(1).Utf8("d").U8(0).U8(1).Utf8("t").U8(0).Packed(1).U8((byte)ColumnType.Tiny).Packed(0).U8(0).ToArray();
        var map = Assert.IsType<TableMapEvent>(parser.Parse(EventsTestData.Event(BinlogEventType.TableMap, tableMapBody)));
        Assert.Equal(9UL, map.TableId);
        var rows = Assert.IsType<RowsEvent>(parser.Parse(EventsTestData.Event(BinlogEventType.WriteRowsV1, new Bytes().U32(9).U16(1).Packed(1).U8(1).U8(0).U8(5).ToArray())));
        Assert.Equal((sbyte)5, rows.ToRowValues().Single().After![0]);
    }

    [Fact]
    public void Previous_gtids_render_as_a_gtid_set()
    {
        var body = new Bytes().U64(1).Hex("357df524413911ee9979b033ee13919e").U64(2).U64(1).U64(6).U64(8).U64(9).ToArray();
        var previous = Assert.IsType<PreviousGtidsEvent>(EventsTestData.Parser(mariaDb: false).Parse(EventsTestData.Event(BinlogEventType.MySqlPreviousGtids, body)));
        Assert.Equal("357df524-4139-11ee-9979-b033ee13919e:1-5:8", previous.GtidSet);
    }

    [Fact]
    public void Reset_forgets_format_description_and_table_maps()
    {
        var parser = EventsTestData.Parser();
        parser.Parse(EventsTestData.Event(BinlogEventType.TableMap, EventsTestData.TableMapBody(7, "db", "t", [(byte)ColumnType.Tiny], [])));
        parser.Reset();
        Assert.Null(parser.FormatDescription);
        Assert.Equal(ChecksumAlgorithm.Unknown, parser.ChecksumAlgorithm);
        Assert.False(parser.TryGetTableMap(7, out _));
    }

    private static byte[] Query(string sql, string database = "db")
    {
        var body = new Bytes().U32(8).U32(0).U8(database.Length).U16(0).U16(0).Utf8(database).U8(0).Utf8(sql).ToArray();
        return EventsTestData.Event(BinlogEventType.Query, body);
    }
}
