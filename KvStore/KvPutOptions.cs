namespace KvStore;

/// <summary>Conditions and TTL for a put.</summary>
public sealed record KvPutOptions
{
    /// <summary>Time to live from the commit; null keeps no TTL (a put always replaces the previous TTL).</summary>
    public TimeSpan? Ttl { get; init; }

    /// <summary>Compare-and-set: write only if the key's current revision equals this value (0 = the key must not exist).</summary>
    public long? IfRevision { get; init; }

    /// <summary>Create only: write only if the key does not exist (expired and deleted keys count as absent).</summary>
    public bool IfAbsent { get; init; }
}
