using System.Text;
using KvStore.Cdc.Decoding;
using KvStore.Cdc.Events;

namespace KvStore.Cdc.Streaming;

/// <summary>
/// Turns the row events of <c>{database}.kv_entries</c> into <see cref="KvChange"/>s, one list per
/// committed transaction. Inserts and updates to a live row are puts; updates to a tombstone are
/// deletes or expiries; deleting a tombstone (purge) is nothing; deleting a live row (by hand) is an
/// unversioned delete. Rolled-back work never reaches the binlog, so it never reaches here.
/// </summary>
internal sealed class KvChangeProjector(string database, string entriesTable = "kv_entries")
{
    // Our schema's column order, used when the server logs no column names (binlog_row_metadata < FULL).
    private static readonly string[] Names = ["tbl", "k", "v", "rev", "created_rev", "created_at", "updated_at", "expires_at", "state"];

    private static ReadOnlySpan<byte> EmptyJsonString => "\"\""u8;

    private readonly List<KvChange> _changes = [];
    private TableDefinition? _mappedFor;
    private int[] _ordinals = [];

    /// <summary>What the last event meant for transaction boundaries.</summary>
    public enum Boundary
    {
        /// <summary>Inside a transaction (or an event that does not matter).</summary>
        None,

        /// <summary>A transaction ended (XID, COMMIT, standalone DDL): a safe resume point.</summary>
        End,
    }

    /// <summary>Changes of the transaction in progress.</summary>
    public IReadOnlyList<KvChange> Pending => _changes;

    /// <summary>Feeds one event; at a transaction end, <see cref="TakeChanges"/> returns its changes.</summary>
    public Boundary Accept(BinlogEvent binlogEvent)
    {
        switch (binlogEvent)
        {
            case MariaDbGtidEvent:
                _changes.Clear();
                return Boundary.None;
            case MySqlGtidEvent:
                _changes.Clear();
                return Boundary.None;
            case QueryEvent query:
                switch (query.Kind)
                {
                    case QueryKind.Begin:
                        _changes.Clear();
                        return Boundary.None;
                    case QueryKind.Commit:
                        return Boundary.End;
                    case QueryKind.Rollback:
                        _changes.Clear();
                        return Boundary.End;
                    case QueryKind.Statement:
                        // DDL commits implicitly and stands alone; table ids may change after it.
                        _mappedFor = null;
                        return Boundary.End;
                    default:
                        return Boundary.None;
                }

            case XidEvent:
                return Boundary.End;
            case RowsEvent rows when IsEntries(rows.TableMap):
                Project(rows);
                return Boundary.None;
            case UnsupportedEvent unsupported when unsupported.TableMap is null || IsEntries(unsupported.TableMap):
                // A compressed transaction, a partial JSON update or a tagged GTID may hide KV changes:
                // stopping with the server setting to change beats silently skipping them.
                throw unsupported.CreateException();
            default:
                return Boundary.None;
        }
    }

    /// <summary>Returns and forgets the changes of the transaction that just ended.</summary>
    public List<KvChange> TakeChanges()
    {
        var taken = new List<KvChange>(_changes);
        _changes.Clear();
        return taken;
    }

    /// <summary>Drops a half-read transaction (the connection broke in the middle of it).</summary>
    public void Reset() => _changes.Clear();

    private bool IsEntries(TableMapEvent map) =>
        string.Equals(map.TableName, entriesTable, StringComparison.Ordinal) &&
        string.Equals(map.DatabaseName, database, StringComparison.Ordinal);

    private void Project(RowsEvent rows)
    {
        var o = Ordinals(rows.TableMap);
        foreach (var row in rows.GetRows())
        {
            switch (row.Kind)
            {
                case RowsEventKind.Insert:
                    Add(row.After, o, unversioned: false);
                    break;
                case RowsEventKind.Update:
                    var before = (KvEntryState)row.Before.GetInt64(o[8]);
                    var after = (KvEntryState)row.After.GetInt64(o[8]);
                    if (before != KvEntryState.Live && after == before)
                    {
                        break; // a tombstone rewritten: nothing a subscriber can see
                    }

                    Add(row.After, o, unversioned: false);
                    break;
                case RowsEventKind.Delete:
                    if ((KvEntryState)row.Before.GetInt64(o[8]) == KvEntryState.Live)
                    {
                        Add(row.Before, o, unversioned: true);
                    }

                    break; // deleting a tombstone is a purge: no change
            }
        }
    }

    private void Add(RowImage image, int[] o, bool unversioned)
    {
        foreach (var ordinal in o)
        {
            if (!image.IsPresent(ordinal))
            {
                throw new BinlogFormatException(
                    $"Column {Names[Array.IndexOf(o, ordinal)]} of {database}.{entriesTable} is missing from the row image: set binlog_row_image=FULL.");
            }
        }

        var state = unversioned ? KvEntryState.Deleted : (KvEntryState)image.GetInt64(o[8]);
        var operation = state switch
        {
            KvEntryState.Live => KvChangeOperation.Put,
            KvEntryState.Expired => KvChangeOperation.Expire,
            _ => KvChangeOperation.Delete,
        };
        ReadOnlyMemory<byte> value = operation == KvChangeOperation.Put && !image.IsNull(o[2])
            ? Copy(image.GetBytes(o[2]))
            : default;
        _changes.Add(new KvChange(
            Encoding.ASCII.GetString(image.GetBytes(o[0])),
            Encoding.UTF8.GetString(image.GetBytes(o[1])),
            operation,
            value,
            (long)image.GetUInt64(o[3]),
            (long)image.GetUInt64(o[4]),
            Utc(image.GetDateTime(o[5])),
            Utc(image.GetDateTime(o[6])),
            image.IsNull(o[7]) ? null : Utc(image.GetDateTime(o[7])))
        {
            IsUnversioned = unversioned,
        });
    }

    /// <summary>
    /// The value leaves the event buffer (which the replication connection reuses) as one right-sized copy; it is
    /// checked and parsed only if a consumer asks (<see cref="KvChange.ValueUtf8"/>, <see cref="KvChange.Value"/>).
    /// </summary>
    private static byte[] Copy(ReadOnlySpan<byte> utf8) =>
        utf8.IsEmpty ? [.. EmptyJsonString] : utf8.ToArray(); // an empty value is not "no value": it is the text ""

    private int[] Ordinals(TableMapEvent map)
    {
        // Identical TABLE_MAPs share one definition, so this is computed once per schema, not per transaction.
        if (ReferenceEquals(map.Definition, _mappedFor))
        {
            return _ordinals;
        }

        var ordinals = new int[Names.Length];
        for (var i = 0; i < Names.Length; i++)
        {
            ordinals[i] = map.ColumnNames is null ? i : map.IndexOf(Names[i]);
            if (ordinals[i] < 0 || ordinals[i] >= map.ColumnCount)
            {
                throw new BinlogFormatException($"{database}.{entriesTable} has no column '{Names[i]}' in the binlog: is the KvStore schema current?");
            }
        }

        _mappedFor = map.Definition;
        _ordinals = ordinals;
        return ordinals;
    }

    private static DateTimeOffset Utc(DateTime value) => new(DateTime.SpecifyKind(value, DateTimeKind.Utc));
}
