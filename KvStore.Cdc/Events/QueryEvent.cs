using System.Text;

namespace KvStore.Cdc.Events;

/// <summary>What a QUERY event does to the transaction stream.</summary>
internal enum QueryKind
{
    /// <summary><c>BEGIN</c>: a MySQL transaction (or a MariaDB one without GTID events) starts.</summary>
    Begin,

    /// <summary><c>COMMIT</c>: a transaction touching non-transactional tables ends (InnoDB ends with XID instead).</summary>
    Commit,

    /// <summary><c>ROLLBACK</c>: a transaction ends without effect (logged for non-transactional changes).</summary>
    Rollback,

    /// <summary><c>SAVEPOINT</c> / <c>ROLLBACK TO</c> inside a transaction.</summary>
    Savepoint,

    /// <summary><c>XA START/END/COMMIT/ROLLBACK</c>.</summary>
    Xa,

    /// <summary>A comment-only placeholder, e.g. MariaDB's "# Dummy event replacing event type ..." for old replicas.</summary>
    Dummy,

    /// <summary>Any other statement: DDL (CREATE/ALTER/DROP/TRUNCATE/RENAME...) or statement-logged DML.</summary>
    Statement,
}

/// <summary>QUERY_EVENT (2): a statement in text form (DDL, BEGIN/COMMIT, or statement-based DML).</summary>
internal sealed class QueryEvent : BinlogEvent
{
    // Status variable codes whose length we know; parsing stops at any other code (we only want the xid).
    private const byte Flags2 = 0, SqlMode = 1, Catalog = 2, AutoIncrement = 3, Charset = 4, TimeZone = 5, CatalogNz = 6;
    private const byte LcTimeNames = 7, CharsetDatabase = 8, TableMapForUpdate = 9, MasterDataWritten = 10, Invoker = 11;
    private const byte UpdatedDbNames = 12, Microseconds = 13, ExplicitDefaultsForTimestamp = 16, DdlLoggedWithXid = 17;
    private const byte DefaultCollationForUtf8Mb4 = 18, SqlRequirePrimaryKey = 19, DefaultTableEncryption = 20;
    private const byte MariaDbHrNow = 128, MariaDbXid = 129, MariaDbGtidFlags3 = 130;
    private const int OverMaxDbs = 254;

    internal QueryEvent(BinlogEventHeader header, uint threadId, uint executionTime, ushort errorCode, string databaseName, string sql, ulong xid)
        : base(header)
    {
        ThreadId = threadId;
        ExecutionTime = executionTime;
        ErrorCode = errorCode;
        DatabaseName = databaseName;
        Sql = sql;
        Xid = xid;
        Kind = Classify(sql);
    }

    /// <summary>Id of the connection that ran the statement.</summary>
    public uint ThreadId { get; }

    /// <summary>Seconds the statement took.</summary>
    public uint ExecutionTime { get; }

    /// <summary>Error code the statement ended with on the source (normally 0).</summary>
    public ushort ErrorCode { get; }

    /// <summary>Default database of the statement (may be empty).</summary>
    public string DatabaseName { get; }

    /// <summary>The statement text.</summary>
    public string Sql { get; }

    /// <summary>The xid of a DDL that was logged with one (MariaDB Q_XID, MySQL Q_DDL_LOGGED_WITH_XID), else 0.</summary>
    public ulong Xid { get; }

    /// <summary>Transaction control, placeholder, or a real statement.</summary>
    public QueryKind Kind { get; }

    /// <summary>A statement that may change table definitions: the table map cache is dropped when one arrives.</summary>
    public bool IsDdl => Kind == QueryKind.Statement;

    internal static QueryEvent Parse(BinlogEventHeader header, ReadOnlySpan<byte> body, int postHeaderLength)
    {
        var reader = new BodyReader(body);
        var threadId = reader.ReadUInt32();
        var executionTime = reader.ReadUInt32();
        var databaseLength = reader.ReadByte();
        var errorCode = reader.ReadUInt16();
        var statusLength = postHeaderLength >= 13 ? reader.ReadUInt16() : 0;
        reader.Skip(Math.Max(0, postHeaderLength - 13));
        var xid = ReadXid(reader.ReadBytes(statusLength));
        var database = reader.ReadUtf8(databaseLength);
        reader.Skip(1); // NUL after the database name
        var sql = Encoding.UTF8.GetString(reader.ReadToEnd());
        return new QueryEvent(header, threadId, executionTime, errorCode, database, sql, xid);
    }

    private static ulong ReadXid(ReadOnlySpan<byte> statusVariables)
    {
        var reader = new BodyReader(statusVariables);
        while (!reader.IsEmpty)
        {
            var code = reader.ReadByte();
            switch (code)
            {
                case MariaDbXid or DdlLoggedWithXid:
                    return reader.ReadUInt64();
                case Flags2 or MasterDataWritten or AutoIncrement:
                    reader.Skip(4);
                    break;
                case SqlMode or TableMapForUpdate:
                    reader.Skip(8);
                    break;
                case Catalog:
                    reader.Skip(reader.ReadByte() + 1);
                    break;
                case TimeZone or CatalogNz:
                    reader.Skip(reader.ReadByte());
                    break;
                case Charset:
                    reader.Skip(6);
                    break;
                case LcTimeNames or CharsetDatabase or DefaultCollationForUtf8Mb4:
                    reader.Skip(2);
                    break;
                case Invoker:
                    reader.Skip(reader.ReadByte());
                    reader.Skip(reader.ReadByte());
                    break;
                case UpdatedDbNames:
                    SkipDatabaseNames(ref reader);
                    break;
                case Microseconds or MariaDbHrNow:
                    reader.Skip(3);
                    break;
                case ExplicitDefaultsForTimestamp or SqlRequirePrimaryKey or DefaultTableEncryption or MariaDbGtidFlags3:
                    reader.Skip(1);
                    break;
                default:
                    return 0;
            }
        }

        return 0;
    }

    private static void SkipDatabaseNames(ref BodyReader reader)
    {
        int count = reader.ReadByte();
        if (count == OverMaxDbs)
        {
            return;
        }

        for (var i = 0; i < count; i++)
        {
            while (reader.ReadByte() != 0)
            {
            }
        }
    }

    private static QueryKind Classify(string sql)
    {
        var text = sql.AsSpan().TrimStart();
        if (text.StartsWith("#", StringComparison.Ordinal))
        {
            return QueryKind.Dummy;
        }

        var firstEnd = WordEnd(text);
        var first = text[..firstEnd];
        var rest = text[firstEnd..].TrimStart();
        if (first.Equals("BEGIN", StringComparison.OrdinalIgnoreCase))
        {
            return QueryKind.Begin;
        }

        if (first.Equals("COMMIT", StringComparison.OrdinalIgnoreCase))
        {
            return QueryKind.Commit;
        }

        if (first.Equals("ROLLBACK", StringComparison.OrdinalIgnoreCase))
        {
            return rest.IsEmpty || rest[0] == ';' ? QueryKind.Rollback : QueryKind.Savepoint;
        }

        if (first.Equals("SAVEPOINT", StringComparison.OrdinalIgnoreCase) || first.Equals("RELEASE", StringComparison.OrdinalIgnoreCase))
        {
            return QueryKind.Savepoint;
        }

        return first.Equals("XA", StringComparison.OrdinalIgnoreCase) ? QueryKind.Xa : QueryKind.Statement;
    }

    private static int WordEnd(ReadOnlySpan<char> text)
    {
        var i = 0;
        while (i < text.Length && char.IsAsciiLetter(text[i]))
        {
            i++;
        }

        return i;
    }
}
