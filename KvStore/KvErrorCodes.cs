namespace KvStore;

/// <summary>
/// Stable, machine-readable error codes carried by <see cref="KvStoreException.Code"/>. The HTTP API
/// and the SignalR hub expose the same strings, so clients can switch on them.
/// </summary>
public static class KvErrorCodes
{
    /// <summary>A table name is empty, too long or has characters outside <c>[A-Za-z0-9_.:-]</c>.</summary>
    public const string InvalidTable = "invalid_table";

    /// <summary>A key is empty or longer than 255 UTF-8 bytes.</summary>
    public const string InvalidKey = "invalid_key";

    /// <summary>A value is not a single valid JSON document.</summary>
    public const string InvalidJson = "invalid_json";

    /// <summary>A value is larger than <see cref="KvStoreOptions.MaxValueBytes"/>.</summary>
    public const string ValueTooLarge = "value_too_large";

    /// <summary>A TTL is zero, negative or longer than <see cref="KvStoreOptions.MaxTtl"/>.</summary>
    public const string InvalidTtl = "invalid_ttl";

    /// <summary>An argument is out of range or inconsistent (limit, revision, batch size, options).</summary>
    public const string InvalidArgument = "invalid_argument";

    /// <summary>A compare-and-set condition (<c>IfRevision</c> / <c>IfAbsent</c>) did not hold.</summary>
    public const string Conflict = "conflict";

    /// <summary>The key does not exist (or has expired or been deleted).</summary>
    public const string NotFound = "not_found";

    /// <summary>An increment met a value that is not a JSON integer.</summary>
    public const string NotAnInteger = "not_an_integer";

    /// <summary>An increment would overflow a signed 64-bit integer.</summary>
    public const string Overflow = "overflow";

    /// <summary>The database schema version does not match the library; run the migrations.</summary>
    public const string SchemaMismatch = "schema_mismatch";

    /// <summary>
    /// The database could not be reached or kept failing transiently, or a put found the client's put
    /// queue full (<see cref="KvStoreOptions.MaxQueuedPuts"/>); nothing was committed.
    /// </summary>
    public const string Unavailable = "unavailable";

    /// <summary>The connection failed while a commit was in flight: the write may or may not have been applied.</summary>
    public const string OutcomeUnknown = "outcome_unknown";
}
