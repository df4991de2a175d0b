namespace KvStore.Storage;

/// <summary>
/// What a conditional write sees after locking its table row: the table revision, the server clock
/// and the current rows of the keys involved. It hands out the next revisions in order.
/// </summary>
internal sealed class LockedState(string table, long revision, DateTime now)
{
    private readonly Dictionary<string, EntryRow> _rows = new(StringComparer.Ordinal);
    private long _nextRevision = revision;

    public string Table { get; } = table;

    /// <summary>Server time (UTC) read under the lock; every change of the transaction is stamped with it.</summary>
    public DateTime Now { get; } = now;

    public void Add(EntryRow row) => _rows[Convert.ToHexString(row.Key)] = row;

    /// <summary>The row of <paramref name="key"/> whatever its state, or null when there is none.</summary>
    public EntryRow? Row(byte[] key) => _rows.TryGetValue(Convert.ToHexString(key), out var row) ? row : null;

    /// <summary>The row of <paramref name="key"/> when it is live (not a tombstone, not expired), else null.</summary>
    public EntryRow? Live(byte[] key) => Row(key) is { } row && row.IsLiveAt(Now) ? row : null;

    /// <summary>Every row read under the lock, whatever its state.</summary>
    public IEnumerable<EntryRow> Rows => _rows.Values;

    /// <summary>Plans a put; an absent <paramref name="current"/> (re-)creates the key.</summary>
    public PlannedWrite Put(byte[] key, string keyText, byte[] value, TimeSpan? ttl, EntryRow? current, bool keepTtl = false)
    {
        var rev = ++_nextRevision;
        DateTime? expiresAt = keepTtl
            ? current?.ExpiresAt
            : ttl is { } t ? Now.AddTicks(t.Ticks - (t.Ticks % 10)) : null;
        return new PlannedWrite(key, keyText, value, rev, current?.CreatedRevision ?? rev, current?.CreatedAt ?? Now, Now, expiresAt, KvEntryState.Live);
    }

    /// <summary>Plans a tombstone of a live key.</summary>
    public PlannedWrite Tombstone(byte[] key, string keyText, EntryRow current, KvEntryState state) =>
        new(key, keyText, null, ++_nextRevision, current.CreatedRevision, current.CreatedAt, Now, null, state);
}

/// <summary>One row a write transaction will upsert into <c>kv_entries</c>.</summary>
internal sealed record PlannedWrite(
    byte[] Key,
    string KeyText,
    byte[]? Value,
    long Revision,
    long CreatedRevision,
    DateTime CreatedAt,
    DateTime UpdatedAt,
    DateTime? ExpiresAt,
    KvEntryState State)
{
    public KvEntry ToEntry(string table) => new EntryRow
    {
        Key = Key,
        Value = Value,
        Revision = Revision,
        CreatedRevision = CreatedRevision,
        CreatedAt = CreatedAt,
        UpdatedAt = UpdatedAt,
        ExpiresAt = ExpiresAt,
        State = State,
    }.ToEntry(table, KeyText);
}
