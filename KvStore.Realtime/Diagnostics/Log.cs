using Microsoft.Extensions.Logging;

namespace KvStore.Realtime.Diagnostics;

/// <summary>Source-generated log messages of KvStore.Realtime (event ids 3000-3999).</summary>
internal static partial class Log
{
    [LoggerMessage(3000, LogLevel.Warning, "Connection {ConnectionId} is a slow consumer ({Messages} messages, {Bytes} bytes queued); closing it")]
    public static partial void SlowConsumer(ILogger logger, string connectionId, int messages, long bytes);

    [LoggerMessage(3001, LogLevel.Information, "Change publisher started")]
    public static partial void PublisherStarted(ILogger logger);

    [LoggerMessage(3002, LogLevel.Error, "Change publisher failed; restarting it")]
    public static partial void PublisherFailed(ILogger logger, Exception exception);

    [LoggerMessage(3003, LogLevel.Warning, "The change stream must be resynchronized ({Reason}); telling every subscriber to resume from the database")]
    public static partial void ResyncBroadcast(ILogger logger, string reason);

    [LoggerMessage(3004, LogLevel.Warning, "No IKvAccessPolicy is registered: only authenticated users may read and write (KvAccessPolicies.AuthenticatedUsers)")]
    public static partial void DefaultPolicy(ILogger logger);

    [LoggerMessage(3005, LogLevel.Debug, "Connection {ConnectionId} subscribed to '{Table}' ({Mode}, revision {Revision})")]
    public static partial void Subscribed(ILogger logger, string connectionId, string table, string mode, long revision);
}
