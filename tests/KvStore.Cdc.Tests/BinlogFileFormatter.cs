using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using KvStore.Cdc.Decoding;
using KvStore.Cdc.Events;

namespace KvStore.Cdc.Tests;

/// <summary>
/// Prints a binlog file the way <c>TZ=UTC mariadb-binlog --base64-output=DECODE-ROWS -vv --print-table-metadata</c>
/// does, restricted to the lines that carry decoded facts: <c># at</c> positions, event header lines (timestamp,
/// server id, end_log_pos, CRC, event description), <c>#Q></c> annotations, TABLE_MAP column metadata,
/// <c>###</c> row values and row counts. Strings are "byte strings": one char per byte (Latin-1), because the
/// tool prints column bytes raw.
/// </summary>
internal static partial class BinlogFileFormatter
{
    private static readonly Encoding Latin1 = Encoding.Latin1;

    /// <summary>Collations the fixtures use: charset name, collation name, bytes per character.</summary>
    private static readonly Dictionary<int, (string Charset, string Collation, int MaxBytes)> Collations = new()
    {
        [8] = ("latin1", "latin1_swedish_ci", 1),
        [33] = ("utf8mb3", "utf8mb3_general_ci", 3),
        [45] = ("utf8mb4", "utf8mb4_general_ci", 4),
        [46] = ("utf8mb4", "utf8mb4_bin", 4),
        [255] = ("utf8mb4", "utf8mb4_0900_ai_ci", 4),
    };

    /// <summary>Formats every event of <paramref name="path"/>.</summary>
    public static List<string> Format(string path)
    {
        var lines = new List<string>();
        var parser = new BinlogEventParser();
        List<string>? pendingAnnotation = null;
        foreach (var (offset, bytes) in BinlogFileReader.ReadAll(path))
        {
            var evt = parser.Parse(bytes);
            var crc = parser.ChecksumAlgorithm == ChecksumAlgorithm.Crc32
                ? BitConverter.ToUInt32(bytes.Span[^4..])
                : (uint?)null;
            lines.Add($"# at {offset}");
            if (evt is AnnotateRowsEvent annotate)
            {
                // mariadb-binlog holds the annotation back and prints it right before the TABLE_MAP that follows.
                pendingAnnotation = [HeaderLine(evt, crc, "Annotate_rows:"), .. SqlLines(annotate.Sql)];
                continue;
            }

            if (pendingAnnotation is not null)
            {
                lines.AddRange(pendingAnnotation);
                pendingAnnotation = null;
            }

            FormatEvent(lines, evt, crc);
        }

        return lines;
    }

    /// <summary>The lines of an expected <c>*.decoded.txt</c> that <see cref="Format"/> produces, read as byte strings.</summary>
    public static List<string> ReadExpected(string decodedPath)
    {
        var text = Latin1.GetString(File.ReadAllBytes(decodedPath));
        return text.Split('\n').Where(IsComparable).ToList();
    }

    private static bool IsComparable(string line) =>
        line.StartsWith("# at ", StringComparison.Ordinal)
        || HeaderLinePattern().IsMatch(line)
        || line.StartsWith("###", StringComparison.Ordinal)
        || line.StartsWith("#Q> ", StringComparison.Ordinal)
        || line.StartsWith("# Columns(", StringComparison.Ordinal)
        || line.StartsWith("#         ", StringComparison.Ordinal)
        || line.StartsWith("# Primary Key", StringComparison.Ordinal)
        || line.StartsWith("# Number of rows:", StringComparison.Ordinal);

    [GeneratedRegex(@"^#\d{6} [ \d]\d:\d\d:\d\d server id ")]
    private static partial Regex HeaderLinePattern();

    private static void FormatEvent(List<string> lines, BinlogEvent evt, uint? crc)
    {
        switch (evt)
        {
            case FormatDescriptionEvent fde:
                var created = fde.CreateTimestamp != 0 ? fde.CreateTimestamp : fde.Header.Timestamp;
                lines.Add(HeaderLine(evt, crc,
                    $"Start: binlog v {fde.BinlogVersion}, server v {fde.ServerVersion} created {Timestamp(created)}{(fde.CreateTimestamp != 0 ? " at startup" : string.Empty)}"));
                break;
            case MariaDbGtidListEvent list:
                lines.Add(HeaderLine(evt, crc, $"Gtid list [{string.Join(",", list.Gtids)}]"));
                break;
            case BinlogCheckpointEvent checkpoint:
                lines.Add(HeaderLine(evt, crc, $"Binlog checkpoint {checkpoint.LogFileName}"));
                break;
            case MariaDbGtidEvent gtid:
                var cid = (gtid.Flags & MariaDbGtidEvent.GroupCommitIdFlag) != 0 ? $" cid={gtid.CommitId}" : string.Empty;
                var kind = !gtid.IsStandalone ? " trans" : gtid.IsDdl ? " ddl" : string.Empty;
                lines.Add(HeaderLine(evt, crc, $"GTID {gtid.Gtid}{cid}{kind}"));
                break;
            case QueryEvent query:
                lines.Add(HeaderLine(evt, crc,
                    $"Query\tthread_id={query.ThreadId}\texec_time={query.ExecutionTime}\terror_code={query.ErrorCode}\txid={query.Xid}"));
                break;
            case TableMapEvent map:
                lines.Add(HeaderLine(evt, crc, $"Table_map: `{map.DatabaseName}`.`{map.TableName}` mapped to number {map.TableId}"));
                lines.AddRange(ColumnLines(map));
                break;
            case RowsEvent rows:
                FormatRows(lines, rows, crc);
                break;
            case XidEvent xid:
                lines.Add(HeaderLine(evt, crc, $"Xid = {xid.Xid}"));
                break;
            case RotateEvent rotate:
                lines.Add(HeaderLine(evt, crc, $"Rotate to {rotate.NextFileName}  pos: {rotate.Position}"));
                break;
            default:
                lines.Add(HeaderLine(evt, crc, $"({evt.Type})"));
                break;
        }
    }

    private static string HeaderLine(BinlogEvent evt, uint? crc, string description) =>
        $"#{Timestamp(evt.Header.Timestamp)} server id {evt.Header.ServerId}  end_log_pos {evt.Header.LogPosition} "
        + (crc is { } value ? $"CRC32 0x{value:x8} " : string.Empty)
        + "\t" + Utf8Bytes(description);

    private static string Timestamp(uint unixSeconds)
    {
        var time = DateTimeOffset.FromUnixTimeSeconds(unixSeconds).UtcDateTime;
        return string.Create(CultureInfo.InvariantCulture, $"{time:yyMMdd} {time.Hour,2}:{time:mm}:{time:ss}");
    }

    private static IEnumerable<string> SqlLines(string sql) => sql.Split('\n').Select(line => "#Q> " + Utf8Bytes(line));

    private static string Utf8Bytes(string text) => Latin1.GetString(Encoding.UTF8.GetBytes(text));

    private static List<string> ColumnLines(TableMapEvent map)
    {
        var result = new List<string>();
        for (var i = 0; i < map.ColumnCount; i++)
        {
            var column = map.Columns[i];
            var text = new StringBuilder();
            if (column.Name is not null)
            {
                text.Append('`').Append(column.Name).Append("` ");
            }

            text.Append(SqlType(column));
            if (column.IsUnsigned)
            {
                text.Append(" UNSIGNED");
            }

            if (!column.IsNullable)
            {
                text.Append(" NOT NULL");
            }

            if (IsText(column) && Collations.TryGetValue(column.CollationId, out var collation))
            {
                text.Append(" CHARSET ").Append(collation.Charset).Append(" COLLATE ").Append(collation.Collation);
            }

            var prefix = i == 0 ? "# Columns(" : "#         ";
            var suffix = i == map.ColumnCount - 1 ? ")" : ",";
            result.Add(prefix + text + suffix);
        }

        if (map.PrimaryKey.Count > 0)
        {
            result.Add($"# Primary Key({string.Join(", ", map.PrimaryKey.Select(k => map.Columns[k].Name ?? "@" + (k + 1)))})");
        }

        return result;
    }

    private static bool IsText(TableColumn column) => column.CollationId != 0 && !column.IsBinary
        && column.Type is ColumnType.VarChar or ColumnType.VarString or ColumnType.String or ColumnType.Blob
            or ColumnType.TinyBlob or ColumnType.MediumBlob or ColumnType.LongBlob;

    private static string SqlType(TableColumn column)
    {
        var maxBytes = Collations.TryGetValue(column.CollationId, out var collation) ? collation.MaxBytes : 1;
        return column.Type switch
        {
            ColumnType.Tiny => "TINYINT",
            ColumnType.Short => "SMALLINT",
            ColumnType.Int24 => "MEDIUMINT",
            ColumnType.Long => "INT",
            ColumnType.LongLong => "BIGINT",
            ColumnType.Float => "FLOAT",
            ColumnType.Double => "DOUBLE",
            ColumnType.NewDecimal => $"DECIMAL({column.Length},{column.Scale})",
            ColumnType.DateTime2 or ColumnType.Timestamp2 or ColumnType.Time2 =>
                (column.Type == ColumnType.DateTime2 ? "DATETIME" : column.Type == ColumnType.Time2 ? "TIME" : "TIMESTAMP")
                + (column.Length > 0 ? $"({column.Length})" : string.Empty),
            ColumnType.VarChar or ColumnType.VarString => IsText(column) ? $"VARCHAR({column.Length / maxBytes})" : $"VARBINARY({column.Length})",
            ColumnType.String => IsText(column) ? $"CHAR({column.Length / maxBytes})" : $"BINARY({column.Length})",
            ColumnType.Blob or ColumnType.TinyBlob or ColumnType.MediumBlob or ColumnType.LongBlob =>
                (column.Length switch { 1 => "TINY", 2 => string.Empty, 3 => "MEDIUM", _ => "LONG" }) + (IsText(column) ? "TEXT" : "BLOB"),
            _ => column.Type.ToString().ToUpperInvariant(),
        };
    }

    private static void FormatRows(List<string> lines, RowsEvent rows, uint? crc)
    {
        var name = rows.Kind switch
        {
            RowsEventKind.Insert => "Write_rows",
            RowsEventKind.Update => "Update_rows",
            _ => "Delete_rows",
        };
        var flags = rows.IsStatementEnd ? " flags: STMT_END_F" : string.Empty;
        lines.Add(HeaderLine(rows, crc, $"{name}: table id {rows.TableId}{flags}"));
        var table = $"`{rows.TableMap.DatabaseName}`.`{rows.TableMap.TableName}`";
        var count = 0;
        foreach (var row in rows.GetRows())
        {
            count++;
            switch (rows.Kind)
            {
                case RowsEventKind.Insert:
                    lines.Add($"### INSERT INTO {table}");
                    lines.Add("### SET");
                    AddImage(lines, row.After);
                    break;
                case RowsEventKind.Delete:
                    lines.Add($"### DELETE FROM {table}");
                    lines.Add("### WHERE");
                    AddImage(lines, row.Before);
                    break;
                default:
                    lines.Add($"### UPDATE {table}");
                    lines.Add("### WHERE");
                    AddImage(lines, row.Before);
                    lines.Add("### SET");
                    AddImage(lines, row.After);
                    break;
            }
        }

        lines.Add($"# Number of rows: {count}");
    }

    private static void AddImage(List<string> lines, RowImage image)
    {
        for (var i = 0; i < image.ColumnCount; i++)
        {
            if (!image.IsPresent(i))
            {
                continue;
            }

            var column = image.Table.Columns[i];
            var isNull = image.IsNull(i);
            var value = isNull ? "NULL" : FormatValue(image, i, column);
            lines.Add($"###   @{i + 1}={value} /* {TypeLabel(column)} meta={column.Metadata} nullable={(column.IsNullable ? 1 : 0)} is_null={(isNull ? 1 : 0)} */");
        }
    }

    /// <summary>The type label mariadb-binlog puts in the comment of each value.</summary>
    private static string TypeLabel(TableColumn column) => column.Type switch
    {
        ColumnType.Long => "INT",
        ColumnType.Tiny => "TINYINT",
        ColumnType.Short => "SHORTINT",
        ColumnType.Int24 => "MEDIUMINT",
        ColumnType.LongLong => "LONGINT",
        ColumnType.NewDecimal => $"DECIMAL({column.Length},{column.Scale})",
        ColumnType.Float => "FLOAT",
        ColumnType.Double => "DOUBLE",
        ColumnType.Bit => $"BIT({column.Length})",
        ColumnType.Timestamp => "TIMESTAMP",
        ColumnType.Timestamp2 => $"TIMESTAMP({column.Length})",
        ColumnType.DateTime => "DATETIME",
        ColumnType.DateTime2 => $"DATETIME({column.Length})",
        ColumnType.Time => "TIME",
        ColumnType.Time2 => $"TIME({column.Length})",
        ColumnType.Date or ColumnType.NewDate => "DATE",
        ColumnType.Year => "YEAR",
        ColumnType.Enum => column.Length == 1 ? "ENUM(1 byte)" : "ENUM(2 bytes)",
        ColumnType.Set => $"SET({column.Length} bytes)",
        ColumnType.Blob or ColumnType.TinyBlob or ColumnType.MediumBlob or ColumnType.LongBlob => column.Length switch
        {
            1 => "TINYBLOB/TINYTEXT",
            2 => "BLOB/TEXT",
            3 => "MEDIUMBLOB/MEDIUMTEXT",
            _ => "LONGBLOB/LONGTEXT",
        },
        ColumnType.VarChar or ColumnType.VarString => $"VARSTRING({column.Length})",
        ColumnType.String => $"STRING({column.Length})",
        ColumnType.Geometry => "GEOMETRY",
        _ => column.Type.ToString().ToUpperInvariant(),
    };

    private static string FormatValue(RowImage image, int ordinal, TableColumn column)
    {
        var raw = image.GetRawValue(ordinal);
        switch (column.Type)
        {
            case ColumnType.Tiny or ColumnType.Short or ColumnType.Int24 or ColumnType.Long or ColumnType.LongLong:
            {
                // The tool ignores signedness: it prints the signed value and, when negative, the unsigned one too.
                var decoder = (IntegerDecoder)column.Decoder;
                var signed = decoder.ReadSigned(raw);
                return signed < 0 ? $"{signed} ({decoder.ReadUnsigned(raw)})" : signed.ToString(CultureInfo.InvariantCulture);
            }

            case ColumnType.NewDecimal:
                return image.GetString(ordinal);
            case ColumnType.Float:
                // printf("%-20g"): 6 significant digits, left-aligned in 20 characters.
                return ((float)image.GetDouble(ordinal)).ToString("G6", CultureInfo.InvariantCulture).PadRight(20);
            case ColumnType.Double:
                // printf("%-.20g"): up to 20 significant digits.
                return image.GetDouble(ordinal).ToString("G20", CultureInfo.InvariantCulture);
            case ColumnType.Bit:
                return Bits(raw, column.Length);
            case ColumnType.Set:
                return Bits(raw, column.Length * 8);
            case ColumnType.Enum:
                return image.GetInt64(ordinal).ToString(CultureInfo.InvariantCulture);
            case ColumnType.Timestamp2 or ColumnType.Timestamp:
            {
                var (seconds, micros) = ((TimestampDecoder)column.Decoder).Read(raw, column);
                var fsp = column.Type == ColumnType.Timestamp ? 0 : column.Length;
                return fsp > 0 ? seconds + MySqlTemporal.FormatFraction(micros, fsp) : seconds.ToString(CultureInfo.InvariantCulture);
            }

            case ColumnType.DateTime2 or ColumnType.DateTime or ColumnType.Time2 or ColumnType.Time:
                return $"'{image.GetString(ordinal)}'";
            case ColumnType.Date or ColumnType.NewDate:
                return $"'{image.GetString(ordinal).Replace('-', ':')}'";
            case ColumnType.Year:
                return (raw[0] + 1900).ToString("D4", CultureInfo.InvariantCulture);
            default:
                return Quoted(image.GetBytes(ordinal));
        }
    }

    /// <summary>Bytes above 0x1F as they are, others as \xNN, in single quotes.</summary>
    private static string Quoted(ReadOnlySpan<byte> bytes)
    {
        var text = new StringBuilder(bytes.Length + 2);
        text.Append('\'');
        foreach (var b in bytes)
        {
            if (b > 0x1F)
            {
                text.Append((char)b);
            }
            else
            {
                text.Append(CultureInfo.InvariantCulture, $"\\x{b:x2}");
            }
        }

        return text.Append('\'').ToString();
    }

    private static string Bits(ReadOnlySpan<byte> bytes, int bitCount)
    {
        var text = new StringBuilder("b'");
        var padded = (bitCount + 7) / 8 * 8;
        for (var bit = padded - bitCount; bit < padded; bit++)
        {
            text.Append(((bytes[bit / 8] >> (7 - (bit % 8))) & 1) != 0 ? '1' : '0');
        }

        return text.Append('\'').ToString();
    }
}
