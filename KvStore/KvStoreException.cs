namespace KvStore;

/// <summary>Base class of every error KvStore raises; <see cref="Code"/> is one of <see cref="KvErrorCodes"/>.</summary>
public class KvStoreException : Exception
{
    /// <summary>Creates an exception with a stable code and a message that says what to do.</summary>
    public KvStoreException(string code, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Code = code;
    }

    /// <summary>A stable, machine-readable code from <see cref="KvErrorCodes"/>.</summary>
    public string Code { get; }
}

/// <summary>The input was rejected before anything was sent to the database; nothing changed.</summary>
public sealed class KvValidationException : KvStoreException
{
    /// <summary>Creates a validation error for <paramref name="parameterName"/>.</summary>
    public KvValidationException(string code, string parameterName, string message)
        : base(code, message)
    {
        ParameterName = parameterName;
    }

    /// <summary>The name of the offending argument or field.</summary>
    public string ParameterName { get; }
}

/// <summary>A compare-and-set condition failed; nothing changed. <see cref="CurrentRevision"/> tells what is there now.</summary>
public sealed class KvConflictException : KvStoreException
{
    /// <summary>Creates a conflict for <paramref name="table"/>/<paramref name="key"/>.</summary>
    public KvConflictException(string table, string key, long? expectedRevision, long currentRevision)
        : base(
            KvErrorCodes.Conflict,
            expectedRevision is null
                ? $"Key '{key}' in table '{table}' already exists (revision {currentRevision}); the write required it to be absent."
                : $"Key '{key}' in table '{table}' is at revision {currentRevision}, not {expectedRevision}; re-read it and retry.")
    {
        Table = table;
        Key = key;
        ExpectedRevision = expectedRevision;
        CurrentRevision = currentRevision;
    }

    /// <summary>The table of the conflicting key.</summary>
    public string Table { get; }

    /// <summary>The conflicting key.</summary>
    public string Key { get; }

    /// <summary>The revision the caller expected, or null for an <c>IfAbsent</c> write.</summary>
    public long? ExpectedRevision { get; }

    /// <summary>The key's current revision, or 0 when the key does not exist.</summary>
    public long CurrentRevision { get; }
}
