using System.Text;
using System.Text.Json;
using MySqlConnector;

namespace KvStore.Storage;

/// <summary>A <c>kv_entries</c> row as read from MySQL.</summary>
internal sealed class EntryRow
{
    /// <summary>The column list every entry query selects, in <see cref="Read"/>'s order.</summary>
    public const string Columns = "k, v, rev, created_rev, created_at, updated_at, expires_at, state";

    public required byte[] Key { get; init; }
    public byte[]? Value { get; init; }
    public long Revision { get; init; }
    public long CreatedRevision { get; init; }
    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; init; }
    public DateTime? ExpiresAt { get; init; }
    public KvEntryState State { get; init; }

    public bool IsLiveAt(DateTime now) => State == KvEntryState.Live && (ExpiresAt is null || ExpiresAt > now);

    public static EntryRow Read(MySqlDataReader reader) => new()
    {
        Key = (byte[])reader.GetValue(0),
        Value = reader.IsDBNull(1) ? null : (byte[])reader.GetValue(1),
        Revision = (long)reader.GetUInt64(2),
        CreatedRevision = (long)reader.GetUInt64(3),
        CreatedAt = reader.GetDateTime(4),
        UpdatedAt = reader.GetDateTime(5),
        ExpiresAt = reader.IsDBNull(6) ? null : reader.GetDateTime(6),
        State = (KvEntryState)reader.GetByte(7),
    };

    public KvEntry ToEntry(string table) => ToEntry(table, Encoding.UTF8.GetString(Key));

    public KvEntry ToEntry(string table, string key) => new(
        table,
        key,
        Value is null ? default : JsonSerializer.Deserialize<JsonElement>(Value),
        Revision,
        CreatedRevision,
        Utc(CreatedAt),
        Utc(UpdatedAt),
        ExpiresAt is { } e ? Utc(e) : null,
        State);

    public static DateTimeOffset Utc(DateTime value) => new(DateTime.SpecifyKind(value, DateTimeKind.Utc));
}
