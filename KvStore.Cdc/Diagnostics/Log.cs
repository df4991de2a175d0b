using Microsoft.Extensions.Logging;

namespace KvStore.Cdc.Diagnostics;

/// <summary>Source-generated log messages of KvStore.Cdc (event ids 2000-2999).</summary>
internal static partial class Log
{
    [LoggerMessage(2000, LogLevel.Information, "Change stream '{Stream}' is the active reader; starting at {Start}")]
    public static partial void Leader(ILogger logger, string stream, string start);

    [LoggerMessage(2001, LogLevel.Information, "Change stream '{Stream}' is on standby: another process holds lock '{Lock}'")]
    public static partial void Standby(ILogger logger, string stream, string @lock);

    [LoggerMessage(2002, LogLevel.Warning, "Change stream '{Stream}' lost its connection ({Reason}); reconnecting from {Position} in {Delay}")]
    public static partial void Reconnecting(ILogger logger, string stream, string reason, string position, TimeSpan delay, Exception exception);

    [LoggerMessage(2003, LogLevel.Warning, "Change stream '{Stream}' lost its leader lock; stopping and competing again")]
    public static partial void LeadershipLost(ILogger logger, string stream);

    [LoggerMessage(2004, LogLevel.Error, "Change stream '{Stream}' cannot continue from its checkpoint: {Reason}")]
    public static partial void ResyncRequired(ILogger logger, string stream, string reason);

    [LoggerMessage(2005, LogLevel.Warning, "Change stream '{Stream}' could not persist its checkpoint; it will try again")]
    public static partial void CheckpointFailed(ILogger logger, string stream, Exception exception);
}
