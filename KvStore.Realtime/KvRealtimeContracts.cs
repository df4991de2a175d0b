using System.Text.Json;
using KvStore.Cdc;

namespace KvStore.Realtime;

/// <summary>Error codes the realtime layer adds to <see cref="KvErrorCodes"/> (same format over HTTP and the hub).</summary>
public static class KvRealtimeErrorCodes
{
    /// <summary>The access policy denied the read or write.</summary>
    public const string Forbidden = "forbidden";

    /// <summary>Too many writes from this connection or client; retry after a moment.</summary>
    public const string RateLimited = "rate_limited";

    /// <summary>The table has its maximum number of subscribers.</summary>
    public const string SubscriberLimit = "subscriber_limit";

    /// <summary>The node has its maximum number of connections.</summary>
    public const string ConnectionLimit = "connection_limit";

    /// <summary>The connection could not keep up and was closed; reconnect and resume.</summary>
    public const string SlowConsumer = "slow_consumer";

    /// <summary>The request body is missing, malformed or too large.</summary>
    public const string InvalidRequest = "invalid_request";

    /// <summary>
    /// This node cannot deliver changes yet (its change stream is starting, resynchronizing, or is a
    /// standby of another node's); retry the subscribe shortly or connect to another node.
    /// </summary>
    public const string NotReady = "not_ready";
}

/// <summary>An entry or a change as clients see it.</summary>
/// <param name="Key">The key.</param>
/// <param name="Op"><c>put</c>, <c>delete</c> or <c>expire</c>.</param>
/// <param name="Value">The JSON value of a put; null for deletes and expiries.</param>
/// <param name="Revision">Table revision of the change.</param>
/// <param name="CreatedRevision">Revision at which the key was (re-)created.</param>
/// <param name="CreatedAt">Creation time (UTC).</param>
/// <param name="UpdatedAt">Time of this change (UTC).</param>
/// <param name="ExpiresAt">Expiry time (UTC), or null.</param>
public sealed record KvEntryDto(
    string Key,
    string Op,
    JsonElement? Value,
    long Revision,
    long CreatedRevision,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? ExpiresAt)
{
    /// <summary>True for a row deleted by hand with SQL: it took no revision, so apply it whatever revision you hold.</summary>
    public bool? Unversioned { get; init; }

    internal static KvEntryDto From(KvEntry e) => new(
        e.Key,
        e.State switch { KvEntryState.Deleted => "delete", KvEntryState.Expired => "expire", _ => "put" },
        e.State == KvEntryState.Live ? e.Value : null,
        e.Revision,
        e.CreatedRevision,
        e.CreatedAt,
        e.UpdatedAt,
        e.ExpiresAt);

    internal static KvEntryDto From(KvChange c) => new(
        c.Key,
        c.Operation switch { KvChangeOperation.Delete => "delete", KvChangeOperation.Expire => "expire", _ => "put" },
        c.Operation == KvChangeOperation.Put ? c.Value : null,
        c.Revision,
        c.CreatedRevision,
        c.CreatedAt,
        c.UpdatedAt,
        c.ExpiresAt)
    {
        Unversioned = c.IsUnversioned ? true : null,
    };
}

/// <summary>The answer to <c>Subscribe</c>.</summary>
/// <param name="Table">The table subscribed to.</param>
/// <param name="Revision">The revision the entries are at; every change after it will be delivered to this connection.</param>
/// <param name="Entries">The snapshot (all <c>put</c>), or with a resume the changes after the given revision (tombstones included).</param>
/// <param name="Complete">False when more follows: continue with <see cref="ContinueAfterKey"/> (snapshot) or <see cref="ContinueAfterRevision"/> (changes).</param>
/// <param name="Reset">True when the requested resume point was too old (history purged): <see cref="Entries"/> is a full snapshot and the client must replace its state.</param>
/// <param name="Mode"><c>snapshot</c> or <c>changes</c>.</param>
/// <param name="ContinueAfterKey">For an incomplete snapshot: the <c>after</c> of the next list page.</param>
/// <param name="ContinueAfterRevision">For incomplete changes: the <c>after</c> of the next changes page.</param>
/// <param name="Subscribers">Subscribers of the table on this node, this one included.</param>
public sealed record SubscribeResult(
    string Table,
    long Revision,
    IReadOnlyList<KvEntryDto> Entries,
    bool Complete,
    bool Reset,
    string Mode,
    string? ContinueAfterKey,
    long? ContinueAfterRevision,
    int Subscribers);

/// <summary>Server to client: one or more whole committed transactions of one table, in revision order.</summary>
/// <param name="Table">The table.</param>
/// <param name="Revision">The highest revision in <see cref="Changes"/>.</param>
/// <param name="Changes">The changes, in revision order (latest per key when frames were merged).</param>
/// <param name="After">
/// The revision this frame continues from: it covers every change of the table in (<paramref name="After"/>, <paramref name="Revision"/>].
/// A client holding a revision below <paramref name="After"/> missed changes and resumes with <c>resumeFrom</c>.
/// </param>
public sealed record ChangesMessage(string Table, long Revision, IReadOnlyList<KvEntryDto> Changes, long After);

/// <summary>
/// Server to client: every change of the table up to <paramref name="Revision"/> has been sent. A client
/// holding less missed something (it resumes with <c>resumeFrom</c>); it must not simply adopt the revision.
/// </summary>
/// <param name="Table">The table.</param>
/// <param name="Revision">The highest revision published to this table's subscribers.</param>
public sealed record ProgressMessage(string Table, long Revision);

/// <summary>Server to client: how many connections subscribe to the table on this node (sent at most once a second per table).</summary>
/// <param name="Table">The table.</param>
/// <param name="Subscribers">Subscribers of the table on this node.</param>
public sealed record PresenceMessage(string Table, int Subscribers);

/// <summary>Server to client: the change stream lost its position; re-subscribe with <c>resumeFrom</c> = the revision you hold.</summary>
/// <param name="Table">The table.</param>
/// <param name="Reason">Why.</param>
public sealed record ResyncMessage(string Table, string Reason);

/// <summary>Options of a put over the hub or HTTP.</summary>
/// <param name="TtlMs">Time to live in milliseconds.</param>
/// <param name="IfRevision">Compare-and-set revision (0 = must not exist).</param>
/// <param name="IfAbsent">Create only.</param>
public sealed record KvWriteOptionsDto(long? TtlMs = null, long? IfRevision = null, bool? IfAbsent = null)
{
    internal KvPutOptions ToPutOptions() => new()
    {
        Ttl = TtlMs is { } ms ? TimeSpan.FromMilliseconds(ms) : null,
        IfRevision = IfRevision,
        IfAbsent = IfAbsent == true,
    };
}

/// <summary>One operation of a committed batch.</summary>
/// <param name="Op"><c>put</c> or <c>delete</c>.</param>
/// <param name="Key">The key.</param>
/// <param name="Value">The value of a put.</param>
/// <param name="TtlMs">Time to live of a put, in milliseconds.</param>
/// <param name="IfRevision">Compare-and-set revision.</param>
/// <param name="IfAbsent">Create only (puts).</param>
public sealed record KvBatchOperationDto(string Op, string Key, JsonElement? Value = null, long? TtlMs = null, long? IfRevision = null, bool? IfAbsent = null);

/// <summary>The result of a committed batch.</summary>
/// <param name="Table">The table.</param>
/// <param name="Revision">The revision after the batch.</param>
/// <param name="Entries">Each operation's resulting entry, in order.</param>
public sealed record KvCommitResultDto(string Table, long Revision, IReadOnlyList<KvEntryDto> Entries);

/// <summary>The result of a delete.</summary>
/// <param name="Table">The table.</param>
/// <param name="Key">The key.</param>
/// <param name="Deleted">False when the key did not exist (nothing changed).</param>
/// <param name="Revision">The tombstone's revision, or the table revision when nothing changed.</param>
public sealed record KvDeleteResultDto(string Table, string Key, bool Deleted, long Revision);

/// <summary>A page of a table listing.</summary>
/// <param name="Table">The table.</param>
/// <param name="Revision">The revision the page was read at.</param>
/// <param name="Entries">The entries, in key order.</param>
/// <param name="Next">The <c>after</c> of the next page, or null on the last one.</param>
public sealed record KvPageDto(string Table, long Revision, IReadOnlyList<KvEntryDto> Entries, string? Next);

/// <summary>Changes after a revision.</summary>
/// <param name="Table">The table.</param>
/// <param name="Revision">The table revision at the read.</param>
/// <param name="Changes">Changes in revision order, tombstones included.</param>
/// <param name="HistoryAvailable">False when the history was purged: take a snapshot instead.</param>
/// <param name="HasMore">True when more changes follow the last one returned.</param>
public sealed record KvChangesDto(string Table, long Revision, IReadOnlyList<KvEntryDto> Changes, bool HistoryAvailable, bool HasMore);
