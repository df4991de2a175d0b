namespace KvStore;

/// <summary>One page of a table listing, in key order (byte-wise on the UTF-8 key).</summary>
/// <param name="Entries">The live entries of this page.</param>
/// <param name="Revision">The table revision the page was read at.</param>
/// <param name="NextAfter">Pass as <c>after</c> to read the next page; null on the last page.</param>
public sealed record KvPage(IReadOnlyList<KvEntry> Entries, long Revision, string? NextAfter);

/// <summary>Entries (tombstones included) that changed after a revision, in revision order.</summary>
/// <param name="Changes">Entries whose last change is after the requested revision, tombstones included.</param>
/// <param name="Revision">The table revision the read was made at.</param>
/// <param name="HistoryAvailable">
/// False when tombstones after the requested revision may have been purged: the caller must take a
/// fresh snapshot instead of applying <paramref name="Changes"/>.
/// </param>
/// <param name="HasMore">True when more changes follow; continue from the last change's revision.</param>
public sealed record KvChanges(IReadOnlyList<KvEntry> Changes, long Revision, bool HistoryAvailable, bool HasMore);

/// <summary>The outcome of a committed batch: the entries as written, in batch order.</summary>
/// <param name="Revision">The table revision after the batch (the revision of its last change).</param>
/// <param name="Entries">Each operation's resulting entry (tombstones for deletes), in batch order.</param>
public sealed record KvCommitResult(long Revision, IReadOnlyList<KvEntry> Entries);
