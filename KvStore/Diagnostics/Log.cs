using Microsoft.Extensions.Logging;

namespace KvStore.Diagnostics;

/// <summary>Source-generated log messages of the KvStore package (event ids 1000-1999).</summary>
internal static partial class Log
{
    [LoggerMessage(1000, LogLevel.Debug, "Retrying {Operation} on table '{Table}' after {Reason} (attempt {Attempt})")]
    public static partial void Retrying(ILogger logger, string operation, string table, string reason, int attempt);

    [LoggerMessage(1001, LogLevel.Warning, "The connection failed while committing {Operation} on table '{Table}'; the outcome is unknown and the operation is not retried")]
    public static partial void OutcomeUnknown(ILogger logger, string operation, string table, Exception exception);

    [LoggerMessage(1002, LogLevel.Information, "KvStore schema version {Version} verified")]
    public static partial void SchemaVerified(ILogger logger, int version);

    [LoggerMessage(1003, LogLevel.Warning, "A put to table '{Table}' was rejected: {MaxQueuedPuts} puts already wait in the put queue (KvStoreOptions.MaxQueuedPuts); nothing was written")]
    public static partial void PutQueueFull(ILogger logger, string table, int maxQueuedPuts);

    [LoggerMessage(1010, LogLevel.Information, "Applying KvStore migration {Version} ({Description})")]
    public static partial void ApplyingMigration(ILogger logger, int version, string description);

    [LoggerMessage(1011, LogLevel.Information, "KvStore schema is at version {Version}; nothing to migrate")]
    public static partial void SchemaUpToDate(ILogger logger, int version);

    [LoggerMessage(1020, LogLevel.Information, "Expiry service became the active instance (lock '{LockName}')")]
    public static partial void ExpiryLeader(ILogger logger, string lockName);

    [LoggerMessage(1021, LogLevel.Debug, "Expiry cycle: {Expired} keys expired, {Purged} tombstones purged")]
    public static partial void ExpiryCycle(ILogger logger, int expired, int purged);

    [LoggerMessage(1022, LogLevel.Warning, "Expiry cycle failed; it will run again after the interval")]
    public static partial void ExpiryCycleFailed(ILogger logger, Exception exception);

    [LoggerMessage(1023, LogLevel.Information, "Expiry service lost its lock connection; it will compete for the lock again")]
    public static partial void ExpiryLeadershipLost(ILogger logger, Exception exception);
}
