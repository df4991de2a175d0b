using System.Text.Json;

namespace KvStore.Cdc;

/// <summary>What happened to a key.</summary>
public enum KvChangeOperation
{
    /// <summary>The key was created or updated (including TTL changes and increments).</summary>
    Put,

    /// <summary>The key was deleted (a tombstone was written, or a row was deleted by hand).</summary>
    Delete,

    /// <summary>The key expired and the expiry service turned it into a tombstone.</summary>
    Expire,
}

/// <summary>One committed change of one key.</summary>
/// <param name="Table">The KV table (namespace).</param>
/// <param name="Key">The key.</param>
/// <param name="Operation">Put, delete or expire.</param>
/// <param name="Value">The JSON value after a put; <see cref="JsonValueKind.Undefined"/> otherwise.</param>
/// <param name="Revision">
/// The table revision of this change. Consumers drop changes at or below the revision they hold,
/// which makes redelivery after a failover harmless. A row deleted by hand (bypassing KvStore) has no
/// revision of its own: it carries the revision of the last change it had and <see cref="IsUnversioned"/> is true.
/// </param>
/// <param name="CreatedRevision">The revision at which the key was (re-)created.</param>
/// <param name="CreatedAt">When the key was (re-)created (UTC, server time).</param>
/// <param name="UpdatedAt">When this change was made (UTC, server time).</param>
/// <param name="ExpiresAt">When the key expires, or null.</param>
public sealed record KvChange(
    string Table,
    string Key,
    KvChangeOperation Operation,
    JsonElement Value,
    long Revision,
    long CreatedRevision,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? ExpiresAt)
{
    /// <summary>True for a row deleted by hand with SQL: it took no new revision, so revision-based de-duplication would drop it.</summary>
    public bool IsUnversioned { get; init; }
}

/// <summary>All KV changes of one committed transaction, in commit order, and where it ends in the binlog.</summary>
/// <param name="Changes">The changes, in the order the transaction made them.</param>
/// <param name="Position">The position right after the transaction: resuming there continues with the next one.</param>
/// <param name="CommittedAt">The commit time the server recorded for the transaction (second precision).</param>
public sealed record KvChangeBatch(IReadOnlyList<KvChange> Changes, KvStreamPosition Position, DateTimeOffset CommittedAt);

/// <summary>
/// A binlog position at a transaction boundary: file and offset, plus the GTID state when the server
/// uses GTIDs (which survive a failover to a replica). Round-trips through <see cref="ToString"/> and
/// <see cref="Parse"/>, so it can serve as a resume token.
/// </summary>
/// <param name="File">The binlog file name.</param>
/// <param name="Offset">The offset in the file right after the transaction.</param>
/// <param name="Gtid">The GTID state after the transaction (MariaDB <c>domain-server-seq[,...]</c> or a MySQL GTID set), or null.</param>
public sealed record KvStreamPosition(string File, long Offset, string? Gtid)
{
    /// <summary>Formats the position as <c>file:offset</c> or <c>file:offset@gtid</c>.</summary>
    public override string ToString() => Gtid is null ? $"{File}:{Offset}" : $"{File}:{Offset}@{Gtid}";

    /// <summary>Parses the output of <see cref="ToString"/>.</summary>
    public static KvStreamPosition Parse(string text)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        var at = text.IndexOf('@', StringComparison.Ordinal);
        var head = at < 0 ? text : text[..at];
        var colon = head.LastIndexOf(':');
        if (colon <= 0 || !long.TryParse(head[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var offset))
        {
            throw new FormatException($"'{text}' is not a stream position (file:offset[@gtid]).");
        }

        return new KvStreamPosition(head[..colon], offset, at < 0 ? null : text[(at + 1)..]);
    }
}
