namespace KvStore.Cdc.Protocol;

/// <summary>
/// The server sent nothing (not even a heartbeat) for longer than the read timeout, or the connect /
/// command timeout elapsed. The connection is treated as dead; reconnect and resume.
/// </summary>
internal sealed class ReplicationTimeoutException : ReplicationException
{
    public ReplicationTimeoutException(TimeSpan timeout, string what, Exception? innerException = null)
        : base(ReplicationErrorCode.Timeout, $"No data from the server for {timeout.TotalSeconds:0.###} s while {what}; the connection is considered dead.", innerException)
    {
        Timeout = timeout;
    }

    public TimeSpan Timeout { get; }

    public override bool IsTransient => true;
}
