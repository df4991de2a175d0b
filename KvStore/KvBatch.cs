using System.Text.Json;

namespace KvStore;

/// <summary>
/// Puts and deletes on keys of one table, committed atomically by <see cref="IKvStore.CommitAsync"/>:
/// all or nothing, one revision per operation, consecutive and in the order added.
/// </summary>
public sealed class KvBatch
{
    private readonly List<KvBatchOperation> _operations = [];

    /// <summary>Starts a batch on <paramref name="table"/>.</summary>
    public KvBatch(string table)
    {
        Table = table;
    }

    /// <summary>The table every operation applies to.</summary>
    public string Table { get; }

    /// <summary>The operations, in commit order.</summary>
    public IReadOnlyList<KvBatchOperation> Operations => _operations;

    /// <summary>Adds a put of a JSON value.</summary>
    public KvBatch Put(string key, JsonElement value, KvPutOptions? options = null) =>
        PutJson(key, JsonSerializer.SerializeToUtf8Bytes(value), options);

    /// <summary>Adds a put of a UTF-8 JSON document (validated on commit).</summary>
    public KvBatch PutJson(string key, ReadOnlyMemory<byte> utf8Json, KvPutOptions? options = null)
    {
        _operations.Add(new KvBatchOperation(KvBatchOperationKind.Put, key, utf8Json, options, options?.IfRevision));
        return this;
    }

    /// <summary>Adds a soft delete (a tombstone); with <paramref name="ifRevision"/>, only if the key is at that revision.</summary>
    public KvBatch Delete(string key, long? ifRevision = null)
    {
        _operations.Add(new KvBatchOperation(KvBatchOperationKind.Delete, key, ReadOnlyMemory<byte>.Empty, null, ifRevision));
        return this;
    }
}

/// <summary>The kind of a batch operation.</summary>
public enum KvBatchOperationKind
{
    /// <summary>Upsert a value.</summary>
    Put,

    /// <summary>Soft delete.</summary>
    Delete,
}

/// <summary>One operation of a <see cref="KvBatch"/>.</summary>
/// <param name="Kind">Put or delete.</param>
/// <param name="Key">The key.</param>
/// <param name="Utf8Json">The value of a put.</param>
/// <param name="PutOptions">TTL and conditions of a put.</param>
/// <param name="IfRevision">Compare-and-set revision, if any.</param>
public sealed record KvBatchOperation(
    KvBatchOperationKind Kind,
    string Key,
    ReadOnlyMemory<byte> Utf8Json,
    KvPutOptions? PutOptions,
    long? IfRevision);
