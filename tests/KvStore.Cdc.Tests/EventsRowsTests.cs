using System.Text;
using KvStore.Cdc.Decoding;
using KvStore.Cdc.Events;

namespace KvStore.Cdc.Tests;

/// <summary>The row cursor: typed access, partial images, NULLs, names, and allocation-free reading.</summary>
public sealed class EventsRowsTests
{
    private const string FullFile = "mariadb-10.11-generated/binlogs/mariadb-bin.000001";
    private const string MinimalFile = "mariadb-10.11-generated/binlogs/mariadb-bin.000002";
    private const string NoMetadataFile = "mariadb-10.11-generated/binlogs/mariadb-bin.000004";

    [Fact]
    public void Kv_rows_read_with_typed_getters_by_column_name()
    {
        var inserts = EventsTestData.EventsOf<RowsEvent>(FullFile).Where(r => r.TableMap.TableName == "kv" && r.Kind == RowsEventKind.Insert).ToList();
        var table = inserts[1].TableMap;
        Assert.Equal(["id", "k", "v", "version", "deleted", "created_at", "updated_at"], table.ColumnNames!);
        int id = table.IndexOf("id"), key = table.IndexOf("K"), value = table.IndexOf("v"), created = table.IndexOf("created_at"), updated = table.IndexOf("updated_at");
        Assert.Equal(-1, table.IndexOf("missing"));
        Assert.Equal([0], table.PrimaryKey);

        var seen = 0;
        foreach (var row in inserts[1].GetRows())
        {
            Assert.False(row.Before.Exists);
            var after = row.After;
            switch (after.GetInt64(id))
            {
                case 2:
                    Assert.Equal("beta", after.GetString(key));
                    Assert.True(after.IsPresent(value));
                    Assert.True(after.IsNull(value));
                    Assert.Equal(new DateTime(2024, 1, 2, 3, 4, 6).AddTicks(10), after.GetDateTime(created));
                    break;
                case 3:
                    Assert.Equal(new byte[] { 0x00, 0xFF, 0x10 }, after.GetBytes(value).ToArray());
                    Assert.Equal(new DateTimeOffset(2024, 12, 31, 23, 59, 59, TimeSpan.Zero).AddTicks(9_999_990), after.GetDateTimeOffset(updated));
                    break;
                case 4:
                    Assert.Equal("ключ-ü", after.GetString(key));
                    Assert.Equal(new string('x', 300), Encoding.ASCII.GetString(after.GetBytes(value)));
                    Assert.Equal(new DateTime(1999, 6, 15, 12, 0, 0, 500), after.GetDateTime(created));
                    Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_000_000_000), after.GetDateTimeOffset(updated));
                    Assert.Equal(DateTimeKind.Utc, after.GetDateTime(updated).Kind);
                    break;
                default:
                    Assert.Fail("unexpected id");
                    break;
            }

            seen++;
        }

        Assert.Equal(3, seen);
    }

    [Fact]
    public void Update_rows_expose_before_and_after_images()
    {
        var update = EventsTestData.EventsOf<RowsEvent>(FullFile).First(r => r.Kind == RowsEventKind.Update);
        foreach (var row in update.GetRows())
        {
            Assert.Equal(RowsEventKind.Update, row.Kind);
            Assert.Equal("value-1", Encoding.ASCII.GetString(row.Before.GetBytes(2)));
            Assert.Equal("value-2", Encoding.ASCII.GetString(row.After.GetBytes(2)));
            Assert.Equal(1, row.Before.GetInt32(3));
            Assert.Equal(2, row.After.GetInt32(3));
        }
    }

    [Fact]
    public void Signed_and_unsigned_extremes_read_exactly()
    {
        var insert = EventsTestData.EventsOf<RowsEvent>(FullFile).First(r => r.TableMap.TableName == "types");
        Assert.True(insert.TableMap.HasSignedness);
        foreach (var row in insert.GetRows())
        {
            var r = row.After;
            Assert.Equal(1, r.GetInt64(0));
            Assert.Equal(long.MinValue, r.GetInt64(1));
            Assert.Equal(ulong.MaxValue, r.GetUInt64(2));
            EventsTestData.Throws<OverflowException>(r, i => i.GetInt64(2));
            EventsTestData.Throws<OverflowException>(r, i => i.GetUInt64(1));
            Assert.Equal(int.MinValue, r.GetInt64(3));
            Assert.Equal(uint.MaxValue, r.GetUInt64(4));
            Assert.Equal(-128, r.GetInt64(5));
            Assert.Equal(255, r.GetInt64(6));
            Assert.Equal("short latin1", r.GetString(7));
            Assert.Equal(new string('é', 300), r.GetString(8));
            Assert.Equal(new byte[] { 0xDE, 0xAD, 0xBE, 0xEF }, r.GetBytes(9).ToArray());
            EventsTestData.Throws<InvalidCastException>(r, i => i.GetString(9));
            Assert.Equal(1000, r.GetBytes(10).Length);
            Assert.Equal(5000, r.GetBytes(12).Length);
            Assert.Equal("some text ü", r.GetString(13));
            Assert.Equal("""{"a": 1, "b": [true, null, "x"], "c": {"d": 1.5}}""", r.GetString(14));
            Assert.Equal(new DateTime(2020, 2, 29, 13, 14, 15), r.GetDateTime(15));
            Assert.Equal(new DateTime(2020, 2, 29, 13, 14, 15).AddTicks(70), r.GetDateTime(16));
            Assert.Equal(new DateTimeOffset(2038, 1, 19, 3, 14, 7, 999, TimeSpan.Zero), r.GetDateTimeOffset(17));
            Assert.Equal(DateTimeOffset.UnixEpoch.AddTicks(10_000_010), r.GetDateTimeOffset(18));
        }
    }

    [Fact]
    public void All_null_row_reports_null_for_every_nullable_column()
    {
        var nullRow = EventsTestData.EventsOf<RowsEvent>(FullFile).Where(r => r.TableMap.TableName == "types").ElementAt(1);
        var values = nullRow.ToRowValues().Single().After!;
        Assert.Equal(2, values[0]);
        Assert.All(values.Skip(1), Assert.Null);
        foreach (var row in nullRow.GetRows())
        {
            Assert.True(row.After.IsPresent(5));
            Assert.True(row.After.IsNull(5));
            var error = EventsTestData.Throws<InvalidOperationException>(row.After, i => i.GetInt64(5));
            Assert.Contains("kvdb.types.c_tinyint is NULL", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Extreme_dates_and_empty_values_decode()
    {
        var row = EventsTestData.EventsOf<RowsEvent>(FullFile).Where(r => r.TableMap.TableName == "types").ElementAt(2).ToRowValues().Single().After!;
        Assert.Equal(long.MaxValue, row[1]);
        Assert.Equal(0UL, row[2]);
        Assert.Equal(string.Empty, row[7]);
        Assert.Equal(Array.Empty<byte>(), row[9]);
        Assert.Equal("[]", row[14]);
        Assert.Equal(new DateTime(1000, 1, 1), row[15]);
        Assert.Equal(new DateTime(9999, 12, 31, 23, 59, 59).AddTicks(9_999_990), row[16]);
        Assert.Equal(new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero), row[17]);
        Assert.Equal(new DateTimeOffset(2000, 1, 1, 0, 0, 0, 500, TimeSpan.Zero), row[18]);
    }

    [Fact]
    public void Minimal_row_image_reports_missing_columns_as_not_present()
    {
        var rows = EventsTestData.EventsOf<RowsEvent>(MinimalFile);
        Assert.Equal(5, rows.Count);

        // INSERT without the defaulted `deleted` column.
        var insert = rows[0];
        Assert.Equal(6, insert.AfterColumnCount);
        foreach (var row in insert.GetRows())
        {
            var deleted = insert.TableMap.IndexOf("deleted");
            Assert.False(row.After.IsPresent(deleted));
            Assert.False(row.After.IsNull(deleted));
            Assert.Same(MissingColumn.Value, row.After.GetValue(deleted));
            var error = EventsTestData.Throws<InvalidOperationException>(row.After, i => i.GetInt64(deleted));
            Assert.Contains("not present", error.Message, StringComparison.Ordinal);
            Assert.Equal("delta", row.After.GetString(1));
        }

        // UPDATE: before image is the primary key only, after image the changed columns only.
        var update = rows[1].ToRowValues().Single();
        Assert.Equal(1L, update.Before![0]);
        Assert.All(update.Before.Skip(1), v => Assert.Same(MissingColumn.Value, v));
        Assert.Equal([MissingColumn.Value, MissingColumn.Value, "value-3"u8.ToArray(), 3, MissingColumn.Value, MissingColumn.Value, MissingColumn.Value], update.After!);

        // DELETE: primary key only.
        var delete = rows[2].ToRowValues().Single();
        Assert.Equal(5L, delete.Before![0]);
        Assert.Equal(1, rows[2].BeforeColumnCount);

        // NOBLOB: the unchanged LONGBLOB is absent from both images, everything else is there.
        foreach (var row in rows[3].GetRows())
        {
            Assert.False(row.Before.IsPresent(2));
            Assert.False(row.After.IsPresent(2));
            Assert.Equal(4, row.After.GetInt64(3));
            Assert.True(row.After.IsPresent(6));
        }

        // FULL again.
        Assert.Equal(7, rows[4].AfterColumnCount);
    }

    [Fact]
    public void Without_row_metadata_columns_have_no_names_and_integers_read_signed()
    {
        var rows = EventsTestData.EventsOf<RowsEvent>(NoMetadataFile);
        var table = rows[0].TableMap;
        Assert.Null(table.ColumnNames);
        Assert.Equal(-1, table.IndexOf("id"));
        Assert.False(table.HasSignedness);
        Assert.Empty(table.PrimaryKey);
        Assert.All(table.Columns, c => Assert.Equal(0, c.CollationId));

        // No charset: VARCHAR defaults to text (UTF-8), BLOB to bytes.
        var values = rows[0].ToRowValues().Single().After!;
        Assert.Equal("epsilon", values[1]);
        Assert.Equal("ev"u8.ToArray(), values[2]);
    }

    [Fact]
    public void Table_with_unknown_column_type_fails_only_when_its_rows_are_read()
    {
        var parser = EventsTestData.Parser();
        var optional = new Bytes().U8(4).Packed(6).PackedString("c1").PackedString("c2").ToArray();
        var tableMap = Assert.IsType<TableMapEvent>(parser.Parse(EventsTestData.Event(
            BinlogEventType.TableMap,
            EventsTestData.TableMapBody(77, "db", "t", [(byte)ColumnType.Long, 140], [4], optional: optional))));

        Assert.Equal(["c1", "c2"], tableMap.ColumnNames!);
        Assert.Contains("db.t.c2", tableMap.DecodeError, StringComparison.Ordinal);

        var rows = Assert.IsType<RowsEvent>(parser.Parse(EventsTestData.Event(
            BinlogEventType.WriteRowsV1,
            EventsTestData.WriteRowsBody(77, 2, new Bytes().U8(0).U32(1).U8(0).ToArray()))));
        var error = Assert.Throws<BinlogFormatException>(() => rows.GetRows());
        Assert.Equal(BinlogErrorCode.UnknownColumnType, error.Code);
        Assert.Contains("column type 140", error.Message, StringComparison.Ordinal);
        Assert.Contains("db.t.c2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_row_data_fails_with_the_table_and_column()
    {
        var parser = EventsTestData.Parser();
        parser.Parse(EventsTestData.Event(
            BinlogEventType.TableMap,
            EventsTestData.TableMapBody(5, "db", "t", [(byte)ColumnType.Long, (byte)ColumnType.VarChar], [0x10, 0x00])));
        var rows = (RowsEvent)parser.Parse(EventsTestData.Event(
            BinlogEventType.WriteRowsV1,
            EventsTestData.WriteRowsBody(5, 2, new Bytes().U8(0).U32(9).U8(10).Utf8("short").ToArray())));

        var error = Assert.Throws<BinlogFormatException>(() => rows.ToRowValues());
        Assert.Contains("db.t.@2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Reading_rows_does_not_allocate_per_row()
    {
        var (parser, rowsEvent) = ThousandKvRows();
        Assert.NotNull(parser);
        var warmUp = SumColumns(rowsEvent);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var sum = SumColumns(rowsEvent);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(warmUp, sum);
        Assert.True(allocated < 1024, $"Reading 1000 rows allocated {allocated} bytes.");
    }

    /// <summary>A parser and a WRITE_ROWS event with 1000 copies of the fixture's first kv row.</summary>
    internal static (BinlogEventParser Parser, RowsEvent Rows) ThousandKvRows(int rowCount = 1000)
    {
        var parser = new BinlogEventParser();
        byte[]? rowImage = null;
        foreach (var raw in BinlogFileReader.ReadAll(Fixtures.Path(FullFile)))
        {
            var evt = parser.Parse(raw.Bytes);
            if (evt is RowsEvent { Kind: RowsEventKind.Insert } rows && rows.TableMap.TableName == "kv")
            {
                rowImage = rows.RowData.ToArray();
                break;
            }
        }

        var data = new Bytes();
        for (var i = 0; i < rowCount; i++)
        {
            data.Raw(rowImage!);
        }

        var big = EventsTestData.Event(BinlogEventType.WriteRowsV1, EventsTestData.WriteRowsBody(24, 7, data.ToArray()));
        return (parser, (RowsEvent)parser.Parse(big));
    }

    private static long SumColumns(RowsEvent rowsEvent)
    {
        long sum = 0;
        foreach (var row in rowsEvent.GetRows())
        {
            var after = row.After;
            sum += after.GetInt64(0) + after.GetBytes(1).Length + after.GetBytes(2).Length + after.GetInt64(3) + after.GetInt64(4);
            sum += after.GetDateTime(5).Ticks + after.GetDateTimeOffset(6).UtcTicks + (after.IsNull(2) ? 1 : 0);
        }

        return sum;
    }
}
