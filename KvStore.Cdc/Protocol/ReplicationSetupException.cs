namespace KvStore.Cdc.Protocol;

/// <summary>
/// The client refused or could not set up replication: TLS required but not offered, the server
/// certificate was rejected, a password would travel unprotected, an unsupported auth plugin, or the
/// server is not configured for replication (binlog off). Fix the configuration; retrying does not help.
/// </summary>
internal sealed class ReplicationSetupException : ReplicationException
{
    public ReplicationSetupException(ReplicationErrorCode errorCode, string message, Exception? innerException = null)
        : base(errorCode, message, innerException)
    {
    }

    public override bool IsTransient => false;
}
