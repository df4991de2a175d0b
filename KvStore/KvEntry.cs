using System.Text.Json;

namespace KvStore;

/// <summary>Whether an entry holds a value or is a tombstone.</summary>
public enum KvEntryState
{
    /// <summary>The key holds a value.</summary>
    Live = 0,

    /// <summary>The key was deleted; the entry is a tombstone until it is purged.</summary>
    Deleted = 1,

    /// <summary>The key expired and the expiry service turned it into a tombstone.</summary>
    Expired = 2,
}

/// <summary>A key and its JSON value at a revision, with timestamps in UTC (server time, microseconds).</summary>
/// <param name="Table">The table (namespace) of the key.</param>
/// <param name="Key">The key.</param>
/// <param name="Value">The JSON value; <see cref="JsonValueKind.Undefined"/> for tombstones.</param>
/// <param name="Revision">The table revision of the entry's last change.</param>
/// <param name="CreatedRevision">The table revision at which the key was (re-)created.</param>
/// <param name="CreatedAt">When the key was (re-)created.</param>
/// <param name="UpdatedAt">When the key last changed.</param>
/// <param name="ExpiresAt">When the key expires, or null for no TTL.</param>
/// <param name="State">Live, or the kind of tombstone.</param>
public sealed record KvEntry(
    string Table,
    string Key,
    JsonElement Value,
    long Revision,
    long CreatedRevision,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? ExpiresAt,
    KvEntryState State = KvEntryState.Live)
{
    /// <summary>Deserializes <see cref="Value"/> with System.Text.Json.</summary>
    public T? GetValue<T>(JsonSerializerOptions? options = null) =>
        State == KvEntryState.Live ? Value.Deserialize<T>(options) : default;
}

/// <summary>A typed view of a <see cref="KvEntry"/>.</summary>
/// <param name="Entry">The raw entry.</param>
/// <param name="Value">The deserialized value.</param>
public sealed record KvEntry<T>(KvEntry Entry, T? Value)
{
    /// <summary>The table revision of the entry's last change.</summary>
    public long Revision => Entry.Revision;
}
