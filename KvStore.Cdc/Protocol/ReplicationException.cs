namespace KvStore.Cdc.Protocol;

/// <summary>
/// Base of every error raised by the replication client. Catch this type one layer up to decide
/// between reconnecting (<see cref="IsTransient"/>) and giving up or resyncing.
/// </summary>
internal abstract class ReplicationException : Exception
{
    protected ReplicationException(ReplicationErrorCode errorCode, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        ErrorCode = errorCode;
    }

    /// <summary>The stable error code.</summary>
    public ReplicationErrorCode ErrorCode { get; }

    /// <summary>True when reconnecting and resuming from the last position may succeed.</summary>
    public abstract bool IsTransient { get; }
}
