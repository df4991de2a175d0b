using System.Collections.Concurrent;

namespace KvStore.Realtime.Hubs;

/// <summary>
/// Which connection is subscribed to which table on this node, the per-table subscriber limit, and
/// the last revision published per subscribed table (for progress messages).
/// </summary>
internal sealed class KvSubscriptions
{
    private readonly object _gate = new();
    private readonly Dictionary<string, string> _tableOf = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _members = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _revisions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _presenceChanged = new(StringComparer.Ordinal);

    /// <summary>
    /// The table of a <c>resync</c> sent to every connection (with a backplane the publisher does not
    /// know which tables are subscribed): resume every table. Never a valid table name.
    /// </summary>
    public const string AllTables = "*";

    public static string GroupName(string table) => "kv:" + table;

    /// <summary>Subscribes <paramref name="connectionId"/> to <paramref name="table"/> (moving it from its previous table) unless the table is full.</summary>
    public bool TryAdd(string connectionId, string table, int limit, out int count, out string? previous)
    {
        lock (_gate)
        {
            _tableOf.TryGetValue(connectionId, out previous);
            if (previous == table)
            {
                count = _members[table].Count;
                previous = null;
                return true;
            }

            var members = _members.TryGetValue(table, out var m) ? m : null;
            if (members is not null && members.Count >= limit)
            {
                count = members.Count;
                previous = null;
                return false;
            }

            if (previous is not null)
            {
                RemoveMember(connectionId, previous);
            }

            if (members is null)
            {
                members = new HashSet<string>(StringComparer.Ordinal);
                _members[table] = members;
            }

            members.Add(connectionId);
            _tableOf[connectionId] = table;
            count = members.Count;
            _presenceChanged[table] = 0;
            return true;
        }
    }

    /// <summary>Removes the connection's subscription; returns the table it had, if any.</summary>
    public string? Remove(string connectionId)
    {
        lock (_gate)
        {
            if (!_tableOf.Remove(connectionId, out var table))
            {
                return null;
            }

            RemoveMember(connectionId, table);
            return table;
        }
    }

    public string? TableOf(string connectionId)
    {
        lock (_gate)
        {
            return _tableOf.TryGetValue(connectionId, out var table) ? table : null;
        }
    }

    public int Count(string table)
    {
        lock (_gate)
        {
            return _members.TryGetValue(table, out var m) ? m.Count : 0;
        }
    }

    public IReadOnlyList<(string Table, int Subscribers)> Tables()
    {
        lock (_gate)
        {
            return _members.Select(kv => (kv.Key, kv.Value.Count)).ToList();
        }
    }

    /// <summary>Tables whose subscriber count changed since the last call.</summary>
    public IReadOnlyList<string> TakePresenceChanges()
    {
        var tables = _presenceChanged.Keys.ToList();
        foreach (var table in tables)
        {
            _presenceChanged.TryRemove(table, out _);
        }

        return tables;
    }

    /// <summary>Records that every change of <paramref name="table"/> up to <paramref name="revision"/> has been published.</summary>
    public void ObserveRevision(string table, long revision)
    {
        // Only tables with subscribers here are tracked, so a million idle tables cost nothing.
        if (Count(table) > 0)
        {
            _revisions.AddOrUpdate(table, revision, (_, current) => Math.Max(current, revision));
        }
    }

    public long? KnownRevision(string table) => _revisions.TryGetValue(table, out var rev) ? rev : null;

    private void RemoveMember(string connectionId, string table)
    {
        if (_members.TryGetValue(table, out var members))
        {
            members.Remove(connectionId);
            if (members.Count == 0)
            {
                _members.Remove(table);
                _revisions.TryRemove(table, out _);
            }
        }

        _presenceChanged[table] = 0;
    }
}
