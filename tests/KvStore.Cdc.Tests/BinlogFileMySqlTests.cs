using KvStore.Cdc.Decoding;
using KvStore.Cdc.Events;

namespace KvStore.Cdc.Tests;

/// <summary>The expected values of the third-party MySQL (and MariaDB 10.5) fixtures, as stated in the fixtures README.</summary>
public sealed class BinlogFileMySqlTests
{
    public static TheoryData<string> AllBinlogFiles()
    {
        var data = new TheoryData<string>();
        var magic = new byte[4];
        foreach (var path in Directory.GetFiles(Fixtures.BinlogRoot, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            using var stream = File.OpenRead(path);
            if (stream.Read(magic) == 4 && magic.AsSpan().SequenceEqual(BinlogFileReader.Magic))
            {
                data.Add(Path.GetRelativePath(Fixtures.BinlogRoot, path).Replace('\\', '/'));
            }
        }

        return data;
    }

    [Fact]
    public void Fixture_folder_holds_all_19_binlog_files()
    {
        Assert.Equal(19, AllBinlogFiles().Count);
    }

    [Theory]
    [MemberData(nameof(AllBinlogFiles))]
    public void Every_event_and_row_of_every_fixture_decodes(string file)
    {
        var rows = 0;
        foreach (var (raw, evt) in EventsTestData.ParseFile(file))
        {
            Assert.Equal(raw.Offset + raw.Bytes.Length, evt.Header.LogPosition);
            if (evt is RowsEvent rowsEvent)
            {
                foreach (var values in rowsEvent.ToRowValues())
                {
                    rows++;
                    Assert.True(values.Before is not null || values.After is not null);
                }

                foreach (var row in rowsEvent.GetRows())
                {
                    ReadEveryColumnAsString(row.Before);
                    ReadEveryColumnAsString(row.After);
                }
            }
        }

        if (!file.Contains("000003", StringComparison.Ordinal) && !file.Contains("000005", StringComparison.Ordinal)
            && !file.Contains("000006", StringComparison.Ordinal) && !file.Contains("transaction_compression", StringComparison.Ordinal))
        {
            Assert.True(rows > 0, "every other fixture holds rows");
        }
    }

    [Fact]
    public void MySqlCdc_all_types_rows_decode_to_their_values()
    {
        var rows = EventsTestData.EventsOf<RowsEvent>("MySqlCdc/mysql-bin.000001");
        Assert.Equal(3, rows.Count);
        var table = rows[0].TableMap;
        Assert.Equal("test", table.DatabaseName);
        Assert.Equal("mysqlcdc", table.TableName);
        Assert.Equal(
            new[] { 3, 1, 2, 9, 3, 8, 4, 5, 246, 254, 15, 15, 245, 252, 16, 254, 254, 13, 10, 18, 19, 17 },
            table.Columns.Select(c => (int)c.WireType));
        Assert.Null(table.ColumnNames);

        foreach (var row in rows[0].GetRows())
        {
            var after = row.After;
            Assert.Equal(11, after.GetInt64(0));
            Assert.Equal(121, after.GetInt64(1));
            Assert.Equal(12341, after.GetInt64(2));
            Assert.Equal(1234561, after.GetInt64(3));
            Assert.Equal(123456789, after.GetInt64(4));
            Assert.Equal(1234567890987654321, after.GetInt64(5));
            Assert.Equal(12345.6789f, (float)after.GetDouble(6));
            Assert.Equal(123456789.09876543, after.GetDouble(7));
            Assert.Equal("1234567890112233445566778899001112223334445556667778889.9900011112", after.GetString(8));
            Assert.Equal("Bsd234234 234234 zdfsfsdfsdf", after.GetString(9));
            Assert.Equal("Hello world!", after.GetString(10));
            Assert.Equal(Convert.FromHexString("1234564534454534"), after.GetBytes(11).ToArray());
            Assert.Equal("""{"id": 1, "name": "John"}""", after.GetString(12));
            Assert.Equal(Convert.FromHexString("152354"), after.GetBytes(13).ToArray());
            Assert.Equal(0b0111101101010101011110000111UL, after.GetUInt64(14));
            Assert.Equal(2, after.GetInt64(15)); // 'Medium'
            Assert.Equal(4UL, after.GetUInt64(16)); // 'Red'
            Assert.Equal(1989, after.GetInt64(17));
            Assert.Equal(new DateTime(1985, 10, 23), after.GetDateTime(18));
            Assert.Equal(new DateTime(1988, 11, 27, 14, 12, 13, 345), after.GetDateTime(19));
            Assert.Equal(new TimeSpan(0, 15, 22, 33, 670), after.GetTimeSpan(20));
            Assert.Equal(new DateTimeOffset(1985, 10, 13, 10, 22, 23, 567, TimeSpan.Zero), after.GetDateTimeOffset(21));
        }
    }

    [Fact]
    public void Enum_string_set_rows_decode_with_names_from_metadata()
    {
        var rows = EventsTestData.EventsOf<RowsEvent>("rust_mysql_common/mysql-enum-string-set.000001");
        Assert.Equal([RowsEventKind.Insert, RowsEventKind.Update, RowsEventKind.Delete], rows.Select(r => r.Kind));
        Assert.All(rows, r => Assert.Equal(2, r.Version));
        var table = rows[0].TableMap;
        Assert.Equal(["f1", "f2", "f3", "f4", "f5"], table.ColumnNames!);
        Assert.Equal(["var1", "variant2", "foo"], table.Columns[2].EnumOrSetValues!);
        Assert.Equal(["one", "two", "three", "four"], table.Columns[3].EnumOrSetValues!);
        Assert.Equal(512, table.Columns[0].Length); // CHAR(128) utf8mb4: the folded length bits
        Assert.Equal(255, table.Columns[0].CollationId);

        var digits = string.Concat(Enumerable.Repeat("0123456789", 10));
        var insert = rows[0].ToRowValues().Single().After!;
        Assert.Equal(digits, insert[0]);
        var f2 = Assert.IsType<string>(insert[1]);
        Assert.StartsWith("0123456789", f2, StringComparison.Ordinal);
        Assert.Equal(298, f2.Length); // the README says "300-char"; the bytes (and mariadb-binlog) hold 298
        Assert.Equal(1, insert[2]);
        Assert.Equal(0b101UL, insert[3]);
        Assert.Equal("0123456789", insert[4]);

        foreach (var row in rows[1].GetRows())
        {
            Assert.Equal("var1", row.Before.GetString(2));
            Assert.Equal("one,three", row.Before.GetString(3));
            Assert.Equal("field1", row.After.GetString(0));
            Assert.Equal("field_2", row.After.GetString(1));
            Assert.Equal(2, row.After.GetInt64(2));
            Assert.Equal("variant2", row.After.GetString(2));
            Assert.Equal(0b1010UL, row.After.GetUInt64(3));
            Assert.Equal("two,four", row.After.GetString(3));
            Assert.Equal(298, row.After.GetString(4).Length);
        }

        var deleted = rows[2].ToRowValues().Single();
        Assert.Null(deleted.After);
        Assert.Equal("field1", deleted.Before![0]);
    }

    [Fact]
    public void Bit_columns_decode_to_their_bit_values()
    {
        var row = EventsTestData.EventsOf<RowsEvent>("rust_mysql_common/mysql_type_bit.000001").Single().ToRowValues().Single().After!;
        Assert.Equal(0b100UL, row[0]);
        Assert.Equal("foo", row[1]);
        Assert.Equal(0b100000UL, row[2]);
    }

    [Fact]
    public void Invisible_columns_are_present_and_signedness_follows_the_metadata()
    {
        var rows = EventsTestData.EventsOf<RowsEvent>("rust_mysql_common/binlog-invisible-columns.000001");
        var table = rows[0].TableMap;
        Assert.Equal([false, false, true, true, true, false], table.Columns.Select(c => c.IsVisible));
        Assert.Equal([true, true, false, false, false, true], table.Columns.Select(c => c.IsUnsigned));
        Assert.True(table.HasSignedness);

        Assert.Equal(new object?[] { 1u, 2u, -3, "4", new byte[] { 5 }, 6000000000UL }, rows[0].ToRowValues().Single().After!);
        Assert.Equal(new object?[] { null, null, -33, "44", "U"u8.ToArray(), null }, rows[1].ToRowValues().Single().After!);
        var update = rows[2].ToRowValues().Single();
        Assert.Equal(new object?[] { null, null, -33, "44", "U"u8.ToArray(), null }, update.Before!);
        Assert.Equal(new object?[] { 111u, 222u, -333, "444", "U"u8.ToArray(), null }, update.After!);
    }

    [Fact]
    public void Negative_time_decodes_to_a_negative_time_span()
    {
        foreach (var row in EventsTestData.EventsOf<RowsEvent>("rust_mysql_common/time_issue.000001").Single().GetRows())
        {
            Assert.Equal(-(TimeSpan.FromDays(21) + new TimeSpan(3, 48, 27)), row.After.GetTimeSpan(0));
            Assert.Equal("-507:48:27", row.After.GetString(0));
        }
    }

    [Fact]
    public void Minimal_metadata_and_minimal_image_report_only_present_columns()
    {
        var rows = EventsTestData.EventsOf<RowsEvent>("rust_mysql_common/minimal_row_metadata.000001").Single();
        Assert.Null(rows.TableMap.ColumnNames);
        Assert.Equal(255, rows.TableMap.Columns[2].CollationId);
        Assert.Equal(3, rows.AfterColumnCount);
        foreach (var row in rows.GetRows())
        {
            var present = new bool[5];
            for (var i = 0; i < present.Length; i++)
            {
                present[i] = row.After.IsPresent(i);
            }

            Assert.Equal([true, false, true, false, true], present);
            Assert.False(row.After.IsNull(1));
            Assert.Equal(3230202323UL, row.After.GetUInt64(4));
            Assert.Equal(3230202323L, row.After.GetInt64(4));
            Assert.Equal("a", row.After.GetString(2));
            Assert.Same(MissingColumn.Value, row.After.GetValue(1));
        }
    }

    [Fact]
    public void Binary_json_converts_to_json_text()
    {
        var rows = EventsTestData.EventsOf<RowsEvent>("rust_mysql_common/json.binlog.000001");
        var first = rows[0].ToRowValues().Single().After!;
        Assert.Equal(new object?[] { 1, """{"age": 24, "data": "xxxxxxxxxx", "name": "Joe"}""", "Joe", 24 }, first);
        foreach (var row in rows.Single(r => r.Kind == RowsEventKind.Update).GetRows())
        {
            Assert.Equal(row.Before.GetInt64(3) + 1, row.After.GetInt64(3));
            Assert.Contains($"\"age\": {row.After.GetInt64(3)}", row.After.GetString(1), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Partial_json_update_is_reported_as_unsupported_on_its_table()
    {
        var unsupported = EventsTestData.EventsOf<UnsupportedEvent>("rust_mysql_common/json.binlog.000001").Single();
        Assert.Equal(BinlogEventType.PartialUpdateRows, unsupported.Type);
        Assert.Equal("t", unsupported.TableMap!.TableName);
        var error = unsupported.CreateException();
        Assert.Equal(BinlogErrorCode.UnsupportedFeature, error.Code);
        Assert.Contains("binlog_row_value_options", error.Message, StringComparison.Ordinal);
        Assert.Contains("mysql.t", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_opaque_values_convert_to_json_text()
    {
        var values = EventsTestData.EventsOf<RowsEvent>("rust_mysql_common/json-opaque.binlog")
            .Select(r => (string)r.ToRowValues().Single().After![0]!)
            .ToList();
        Assert.Equal(
            [
                """{"a": "base64:type15:VQ=="}""",
                """{"b": "2012-03-18"}""",
                """{"c": "2012-03-18 11:30:45.000000"}""",
                """{"c": "87:31:46.654321"}""",
                """{"d": 123.456}""",
                """{"e": 9.00}""",
                """{"e": [0, 1, true, false]}""",
                """{"e": null}""",
            ],
            values);
    }

    [Fact]
    public void Compressed_transaction_is_reported_as_unsupported()
    {
        var events = EventsTestData.ParseFile("rust_mysql_common/transaction_compression.000001").Select(e => e.Event).ToList();
        var previous = Assert.Single(events.OfType<PreviousGtidsEvent>());
        Assert.Equal("357df524-4139-11ee-9979-b033ee13919e:1", previous.GtidSet);
        var payload = Assert.Single(events.OfType<UnsupportedEvent>());
        Assert.Equal(BinlogEventType.TransactionPayload, payload.Type);
        Assert.Null(payload.TableMap);
        Assert.Contains("binlog_transaction_compression=OFF", payload.CreateException().Message, StringComparison.Ordinal);
        Assert.IsType<RotateEvent>(events[^1]);
    }

    [Fact]
    public void Tagged_gtid_is_reported_as_unsupported_and_its_rows_still_decode()
    {
        var events = EventsTestData.ParseFile("rust_mysql_common/binlog_transaction_with_GTID_TAG.000001").Select(e => e.Event).ToList();
        Assert.Null(Assert.Single(events.OfType<PreviousGtidsEvent>()).Entries);
        Assert.Equal(BinlogEventType.MySqlGtidTagged, Assert.Single(events.OfType<UnsupportedEvent>()).Type);
        var row = Assert.Single(events.OfType<RowsEvent>()).ToRowValues().Single().After!;
        Assert.Equal(new object?[] { 3, 100, 250.00m }, row);
        Assert.Equal("250.00", ((decimal)row[2]!).ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void MariaDb_10_5_outbox_rows_decode()
    {
        var rows = EventsTestData.EventsOf<RowsEvent>("rust_mysql_common/mariadb-bin.000001");
        Assert.Equal(2, rows.Count);
        var table = rows[0].TableMap;
        Assert.Equal(1, table.IndexOf("TOPIC"));
        Assert.Equal([0], table.PrimaryKey);
        Assert.Equal(ColumnType.Enum, table.Columns[2].Type);
        Assert.Equal(1020, table.Columns[1].Length);

        var ids = new List<long>();
        foreach (var rowsEvent in rows)
        {
            Assert.Equal(BinlogEventType.WriteRowsV1, rowsEvent.Type);
            foreach (var row in rowsEvent.GetRows())
            {
                ids.Add(row.After.GetInt64(0));
                Assert.Equal("foo", row.After.GetString(1));
                Assert.Equal(2, row.After.GetInt64(2));
                Assert.Equal("JSON", row.After.GetString(2));
                Assert.Equal("""{"foo":1}"""u8.ToArray(), row.After.GetBytes(3).ToArray());
            }
        }

        Assert.Equal([62, 63], ids);
        foreach (var row in rows[0].GetRows())
        {
            Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1650493084), row.After.GetDateTimeOffset(4));
        }

        var annotations = EventsTestData.EventsOf<AnnotateRowsEvent>("rust_mysql_common/mariadb-bin.000001");
        Assert.All(annotations, a => Assert.StartsWith("INSERT", a.Sql, StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void Connector_java_crc32_file_has_60_transactions()
    {
        var events = EventsTestData.ParseFile("mysql-binlog-connector-java/mysql-bin.checksum-crc32").Select(e => e.Event).ToList();
        Assert.Equal(60, events.OfType<MySqlGtidEvent>().Count(g => g.IsAnonymous));
        Assert.Equal(60, events.OfType<QueryEvent>().Count(q => q.Kind == QueryKind.Begin));
        Assert.Equal(60, events.OfType<XidEvent>().Count());
        Assert.Equal(60, events.OfType<TableMapEvent>().Count());
        Assert.Equal(60, events.OfType<RowsEvent>().Count());
        Assert.Contains(events.OfType<RowsEvent>(), r => r.Kind == RowsEventKind.Delete);
        Assert.Contains(events.OfType<TableMapEvent>(), t => t.Columns.Any(c => c.Type == ColumnType.VarChar && c.Length == 765));
    }

    [Fact]
    public void Connector_java_file_without_checksums_has_the_documented_event_counts()
    {
        var events = EventsTestData.ParseFile("mysql-binlog-connector-java/mysql-bin.checksum-none").Select(e => e.Event).ToList();
        Assert.Equal(ChecksumAlgorithm.None, Assert.IsType<FormatDescriptionEvent>(events[0]).ChecksumAlgorithm);
        Assert.Equal(36, events.OfType<TableMapEvent>().Count());
        Assert.Equal(34, events.OfType<RowsEvent>().Count(r => r.Type == BinlogEventType.WriteRowsV2));
        Assert.Equal(2, events.OfType<RowsEvent>().Count(r => r.Type == BinlogEventType.UpdateRowsV2));
        var update = events.OfType<RowsEvent>().First(r => r.Kind == RowsEventKind.Update).ToRowValues().Single();
        Assert.Equal("test_user_name", update.Before![8]);
        Assert.Equal("user1", update.After![8]);
    }

    private static void ReadEveryColumnAsString(RowImage image)
    {
        if (!image.Exists)
        {
            return;
        }

        for (var i = 0; i < image.ColumnCount; i++)
        {
            if (!image.IsPresent(i) || image.IsNull(i))
            {
                continue;
            }

            var column = image.Table.Columns[i];
            if (column.IsBinary || column.Type == ColumnType.Geometry)
            {
                _ = image.GetBytes(i);
            }
            else
            {
                Assert.NotNull(image.GetString(i));
            }
        }
    }
}
