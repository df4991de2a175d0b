using System.Runtime.CompilerServices;
using System.Text;
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
/// <remarks>
/// The value travels as the UTF-8 bytes stored in the row (<see cref="ValueUtf8"/>); <see cref="Value"/> parses
/// them on first access and caches the result, so consumers that only forward the JSON never build a DOM.
/// Instances are safe to read from several threads. Two changes are equal when all their properties are,
/// the value compared byte by byte.
/// </remarks>
/// <param name="Table">The KV table (namespace).</param>
/// <param name="Key">The key.</param>
/// <param name="Operation">Put, delete or expire.</param>
/// <param name="ValueUtf8">
/// The value after a put as UTF-8 JSON, as stored in the row (kept, not copied); empty otherwise. See
/// <see cref="ValueUtf8"/> for what reading it returns when the stored bytes are not JSON.
/// </param>
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
    ReadOnlyMemory<byte> ValueUtf8,
    long Revision,
    long CreatedRevision,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? ExpiresAt)
{
    private ReadOnlyMemory<byte> _stored = ValueUtf8;

    // Filled on first access; boxed so that publishing them is one atomic reference write. Two threads racing
    // compute equal values and one of them wins.
    private StrongBox<ReadOnlyMemory<byte>>? _json;
    private StrongBox<JsonElement>? _value;

    /// <summary>
    /// The value after a put as UTF-8 JSON text, empty for deletes and expiries (and for a put of SQL NULL):
    /// exactly the bytes stored in the row when they hold a JSON value, so it can be forwarded as is (for
    /// example with <see cref="Utf8JsonWriter.WriteRawValue(ReadOnlySpan{byte}, bool)"/>). KvStore only writes
    /// valid JSON; bytes written by hand with SQL that are not JSON come out as a JSON string of their text, and
    /// anything after the first JSON value is dropped, the same value <see cref="Value"/> returns. The bytes are
    /// checked on first access (one pass of <see cref="Utf8JsonReader"/>, no DOM).
    /// </summary>
    public ReadOnlyMemory<byte> ValueUtf8
    {
        get
        {
            if (_stored.IsEmpty)
            {
                return _stored;
            }

            var json = Volatile.Read(ref _json);
            if (json is null)
            {
                json = new StrongBox<ReadOnlyMemory<byte>>(ToJson(_stored));
                json = Interlocked.CompareExchange(ref _json, json, null) ?? json;
            }

            return json.Value;
        }

        init
        {
            _stored = value;
            _json = null;
            _value = null;
        }
    }

    /// <summary>
    /// The JSON value after a put, parsed from <see cref="ValueUtf8"/> on first access and cached;
    /// <see cref="JsonValueKind.Undefined"/> for deletes and expiries. A stored value that is not JSON (written by
    /// hand with SQL) comes out as a JSON string of its text: reading it never throws.
    /// </summary>
    public JsonElement Value
    {
        get
        {
            if (_stored.IsEmpty)
            {
                return default;
            }

            var value = Volatile.Read(ref _value);
            if (value is null)
            {
                value = new StrongBox<JsonElement>(Parse(_stored.Span));
                value = Interlocked.CompareExchange(ref _value, value, null) ?? value;
            }

            return value.Value;
        }
    }

    /// <summary>True for a row deleted by hand with SQL: it took no new revision, so revision-based de-duplication would drop it.</summary>
    public bool IsUnversioned { get; init; }

    /// <inheritdoc/>
    public bool Equals(KvChange? other) =>
        ReferenceEquals(this, other) ||
        (other is not null &&
         string.Equals(Table, other.Table, StringComparison.Ordinal) &&
         string.Equals(Key, other.Key, StringComparison.Ordinal) &&
         Operation == other.Operation &&
         Revision == other.Revision &&
         CreatedRevision == other.CreatedRevision &&
         CreatedAt.Equals(other.CreatedAt) &&
         UpdatedAt.Equals(other.UpdatedAt) &&
         Nullable.Equals(ExpiresAt, other.ExpiresAt) &&
         IsUnversioned == other.IsUnversioned &&
         ValueUtf8.Span.SequenceEqual(other.ValueUtf8.Span));

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = default(HashCode);
        hash.Add(Table, StringComparer.Ordinal);
        hash.Add(Key, StringComparer.Ordinal);
        hash.Add(Operation);
        hash.Add(Revision);
        hash.Add(CreatedRevision);
        hash.Add(CreatedAt);
        hash.Add(UpdatedAt);
        hash.Add(ExpiresAt);
        hash.Add(IsUnversioned);
        hash.AddBytes(ValueUtf8.Span);
        return hash.ToHashCode();
    }

    /// <summary>
    /// The stored bytes when they hold one JSON value (followed by nothing but whitespace), only that value when
    /// something follows it, or a JSON string of their text when they are not JSON: what <see cref="Parse"/> accepts,
    /// with the same reader, so <see cref="ValueUtf8"/> and <see cref="Value"/> always agree.
    /// </summary>
    private static ReadOnlyMemory<byte> ToJson(ReadOnlyMemory<byte> stored)
    {
        var reader = new Utf8JsonReader(stored.Span);
        try
        {
            if (!reader.Read())
            {
                return Quote(stored.Span);
            }

            reader.Skip();
        }
        catch (JsonException)
        {
            return Quote(stored.Span);
        }

        var end = (int)reader.BytesConsumed;
        return stored.Span[end..].TrimStart(" \t\r\n"u8).IsEmpty ? stored : stored[..end];
    }

    private static JsonElement Parse(ReadOnlySpan<byte> utf8)
    {
        try
        {
            var reader = new Utf8JsonReader(utf8);
            return JsonElement.ParseValue(ref reader);
        }
        catch (JsonException)
        {
            // KvStore only writes valid JSON; a value written by hand may not be. Forward it as a JSON
            // string rather than stopping the stream for good on a row it can never get past.
            return JsonSerializer.SerializeToElement(Encoding.UTF8.GetString(utf8));
        }
    }

    private static byte[] Quote(ReadOnlySpan<byte> utf8) => JsonSerializer.SerializeToUtf8Bytes(Encoding.UTF8.GetString(utf8));
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
