namespace KvStore.Cdc.Protocol;

/// <summary>The server's bytes do not follow the protocol, or an event failed its CRC32 check.</summary>
internal sealed class ReplicationProtocolException : ReplicationException
{
    public ReplicationProtocolException(string message, Exception? innerException = null)
        : this(ReplicationErrorCode.ProtocolViolation, message, innerException)
    {
    }

    public ReplicationProtocolException(ReplicationErrorCode errorCode, string message, Exception? innerException = null)
        : base(errorCode, message, innerException)
    {
    }

    /// <summary>Corruption on the wire goes away on reconnect; a bad file will fail again at the same position.</summary>
    public override bool IsTransient => true;
}
