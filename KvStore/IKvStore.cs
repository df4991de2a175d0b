using System.Text.Json;

namespace KvStore;

/// <summary>
/// The KvStore API: tables (namespaces) of keys holding JSON values. Every change takes the next
/// revision of its table; results carry it. All methods are thread-safe.
/// </summary>
public interface IKvStore
{
    /// <summary>Reads a live key; null when it does not exist, is deleted or has expired.</summary>
    Task<KvEntry?> GetAsync(string table, string key, CancellationToken cancellationToken = default);

    /// <summary>Reads a live key and deserializes its value; null when absent.</summary>
    Task<KvEntry<T>?> GetAsync<T>(string table, string key, CancellationToken cancellationToken = default);

    /// <summary>Reads several live keys of one table; absent keys are left out. At most <see cref="KvStoreOptions.MaxPageSize"/> keys.</summary>
    Task<IReadOnlyList<KvEntry>> GetManyAsync(string table, IEnumerable<string> keys, CancellationToken cancellationToken = default);

    /// <summary>
    /// Lists live keys in key order (byte-wise on UTF-8), optionally those starting with
    /// <paramref name="prefix"/>, after the key <paramref name="after"/> (keyset pagination). Each page is a
    /// consistent snapshot: its entries are exactly the table's state at <see cref="KvPage.Revision"/>.
    /// </summary>
    Task<KvPage> ListAsync(string table, string? prefix = null, string? after = null, int limit = 100, CancellationToken cancellationToken = default);

    /// <summary>The table's current revision (0 for a table never written).</summary>
    Task<long> GetTableRevisionAsync(string table, CancellationToken cancellationToken = default);

    /// <summary>
    /// Entries whose last change is after <paramref name="afterRevision"/>, tombstones included, in
    /// revision order: what a subscriber that saw <paramref name="afterRevision"/> has missed.
    /// </summary>
    Task<KvChanges> GetChangesAsync(string table, long afterRevision, int limit = 1000, CancellationToken cancellationToken = default);

    /// <summary>Upserts a JSON value; returns the committed entry with its new revision.</summary>
    /// <exception cref="KvConflictException">An <see cref="KvPutOptions.IfRevision"/> or <see cref="KvPutOptions.IfAbsent"/> condition failed.</exception>
    Task<KvEntry> PutAsync(string table, string key, JsonElement value, KvPutOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Upserts a UTF-8 JSON document (validated); returns the committed entry.</summary>
    Task<KvEntry> PutJsonAsync(string table, string key, ReadOnlyMemory<byte> utf8Json, KvPutOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Serializes <paramref name="value"/> with System.Text.Json and upserts it.</summary>
    Task<KvEntry> PutAsync<T>(string table, string key, T value, KvPutOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Soft-deletes a key: writes a tombstone with a new revision and returns it; null (and no change)
    /// when the key is absent. With <paramref name="ifRevision"/>, deletes only at that revision.
    /// </summary>
    Task<KvEntry?> DeleteAsync(string table, string key, long? ifRevision = null, CancellationToken cancellationToken = default);

    /// <summary>Sets the TTL of a live key (a change with a new revision).</summary>
    /// <exception cref="KvStoreException">Code <see cref="KvErrorCodes.NotFound"/> when the key is absent.</exception>
    Task<KvEntry> SetTtlAsync(string table, string key, TimeSpan ttl, long? ifRevision = null, CancellationToken cancellationToken = default);

    /// <summary>Removes the TTL of a live key (a change with a new revision).</summary>
    Task<KvEntry> PersistAsync(string table, string key, long? ifRevision = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Atomically adds <paramref name="delta"/> to a JSON integer; an absent key is created at
    /// <paramref name="delta"/>. Fails with <see cref="KvErrorCodes.NotAnInteger"/> or
    /// <see cref="KvErrorCodes.Overflow"/> without changing anything.
    /// </summary>
    Task<KvEntry> IncrementAsync(string table, string key, long delta, CancellationToken cancellationToken = default);

    /// <summary>Commits a batch atomically: all operations or none, consecutive revisions in batch order.</summary>
    Task<KvCommitResult> CommitAsync(KvBatch batch, CancellationToken cancellationToken = default);
}
