using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace KvStore.Validation;

/// <summary>Checks names, keys, values and TTLs before any SQL runs.</summary>
internal static class KvValidator
{
    public const int MaxTableLength = 64;
    public const int MaxKeyBytes = 255;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static void Table(string? table, string parameterName = "table")
    {
        if (!IsValidTable(table))
        {
            throw new KvValidationException(
                KvErrorCodes.InvalidTable,
                parameterName,
                $"Table name '{Truncate(table)}' is invalid: use 1 to {MaxTableLength} characters from A-Z, a-z, 0-9, '_', '.', ':' and '-'.");
        }
    }

    public static bool IsValidTable(string? table)
    {
        if (string.IsNullOrEmpty(table) || table.Length > MaxTableLength)
        {
            return false;
        }

        foreach (var c in table)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or ':' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Validates a key and returns its UTF-8 bytes.</summary>
    public static byte[] Key(string? key, string parameterName = "key")
    {
        if (string.IsNullOrEmpty(key))
        {
            throw new KvValidationException(KvErrorCodes.InvalidKey, parameterName, "A key must not be empty.");
        }

        byte[] bytes;
        try
        {
            bytes = StrictUtf8.GetBytes(key);
        }
        catch (EncoderFallbackException)
        {
            throw new KvValidationException(KvErrorCodes.InvalidKey, parameterName, "A key must be valid Unicode text (it contains an unpaired surrogate).");
        }

        if (bytes.Length > MaxKeyBytes)
        {
            throw new KvValidationException(
                KvErrorCodes.InvalidKey,
                parameterName,
                $"Key '{Truncate(key)}' is {bytes.Length} UTF-8 bytes long; the limit is {MaxKeyBytes}.");
        }

        return bytes;
    }

    /// <summary>
    /// Checks that <paramref name="utf8Json"/> is exactly one JSON value of acceptable size and
    /// returns it parsed (one pass: validation and parsing are the same work).
    /// </summary>
    public static JsonElement Json(ReadOnlySpan<byte> utf8Json, int maxBytes, string parameterName = "value")
    {
        if (utf8Json.Length > maxBytes)
        {
            throw new KvValidationException(
                KvErrorCodes.ValueTooLarge,
                parameterName,
                $"The value is {utf8Json.Length} bytes; the limit is {maxBytes} bytes.");
        }

        if (utf8Json.IsEmpty || !Utf8.IsValid(utf8Json))
        {
            throw new KvValidationException(KvErrorCodes.InvalidJson, parameterName, "The value must be a JSON document in valid UTF-8.");
        }

        try
        {
            var reader = new Utf8JsonReader(utf8Json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 64 });
            var element = JsonElement.ParseValue(ref reader);
            if (reader.Read())
            {
                throw new JsonException("more than one JSON value");
            }

            return element;
        }
        catch (JsonException ex)
        {
            throw new KvValidationException(KvErrorCodes.InvalidJson, parameterName, $"The value is not valid JSON: {ex.Message}");
        }
    }

    public static TimeSpan? Ttl(TimeSpan? ttl, TimeSpan max, string parameterName = "ttl")
    {
        if (ttl is { } value && (value < TimeSpan.FromMilliseconds(1) || value > max))
        {
            throw new KvValidationException(
                KvErrorCodes.InvalidTtl,
                parameterName,
                $"TTL {value} is out of range: use at least 1 ms and at most {max}.");
        }

        return ttl;
    }

    public static void Revision(long? revision, string parameterName = "ifRevision")
    {
        if (revision is < 0)
        {
            throw new KvValidationException(KvErrorCodes.InvalidArgument, parameterName, "A revision cannot be negative.");
        }
    }

    public static void Limit(int limit, int max, string parameterName = "limit")
    {
        if (limit < 1 || limit > max)
        {
            throw new KvValidationException(KvErrorCodes.InvalidArgument, parameterName, $"Limit {limit} is out of range 1..{max}.");
        }
    }

    private static string Truncate(string? s) => s is null ? "(null)" : s.Length <= 80 ? s : s[..80] + "…";
}
