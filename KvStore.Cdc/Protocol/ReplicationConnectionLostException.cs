namespace KvStore.Cdc.Protocol;

/// <summary>The connection to the server closed or failed; reconnect and resume from the last position.</summary>
internal sealed class ReplicationConnectionLostException : ReplicationException
{
    public ReplicationConnectionLostException(string message, Exception? innerException = null)
        : base(ReplicationErrorCode.ConnectionLost, message, innerException)
    {
    }

    public override bool IsTransient => true;
}
