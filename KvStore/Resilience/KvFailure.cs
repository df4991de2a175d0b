using System.Net.Sockets;
using MySqlConnector;

namespace KvStore.Resilience;

/// <summary>Where an exception struck, which decides whether a retry is safe.</summary>
internal enum KvPhase
{
    /// <summary>Opening the connection: nothing was sent.</summary>
    Connect,

    /// <summary>A read, or a write round trip that does not contain COMMIT.</summary>
    BeforeCommit,

    /// <summary>The round trip that contains COMMIT.</summary>
    Commit,
}

/// <summary>An internal marker: the operation certainly did not commit and may be retried.</summary>
internal sealed class KvTransientException(string reason, Exception inner) : Exception(reason, inner)
{
    public string Reason { get; } = reason;
}

/// <summary>Classifies MySQL failures into retryable, ambiguous and final.</summary>
internal static class KvFailure
{
    public const int DeadlockErrorCode = 1213;
    public const int LockWaitTimeoutErrorCode = 1205;

    /// <summary>
    /// Maps an exception raised in <paramref name="phase"/> to what the caller should see: a
    /// <see cref="KvTransientException"/> (retry), a <see cref="KvStoreException"/> with
    /// <see cref="KvErrorCodes.OutcomeUnknown"/>, or null to rethrow the original.
    /// </summary>
    public static Exception? Classify(Exception exception, KvPhase phase, string operation, string table)
    {
        if (exception is MySqlException mysql)
        {
            // A server error stops a multi-statement batch at the failing statement, so COMMIT was not
            // executed: deadlocks and lock-wait timeouts are safe to retry in every phase.
            switch ((int)mysql.ErrorCode)
            {
                case DeadlockErrorCode:
                    return new KvTransientException("deadlock", exception);
                case LockWaitTimeoutErrorCode:
                    return new KvTransientException("lock_wait_timeout", exception);
            }

            if (IsConnectionFailure(mysql))
            {
                return phase switch
                {
                    KvPhase.Commit => OutcomeUnknown(operation, table, exception),
                    _ => new KvTransientException("connect", exception),
                };
            }

            return null;
        }

        if (exception is IOException or SocketException or TimeoutException or EndOfStreamException or ObjectDisposedException)
        {
            return phase == KvPhase.Commit ? OutcomeUnknown(operation, table, exception) : new KvTransientException("connect", exception);
        }

        return null;
    }

    private static bool IsConnectionFailure(MySqlException exception) =>
        exception.ErrorCode is MySqlErrorCode.UnableToConnectToHost
            or MySqlErrorCode.CommandTimeoutExpired
            or MySqlErrorCode.QueryInterrupted
            or MySqlErrorCode.ConnectionCountError
            or MySqlErrorCode.TooManyUserConnections
            or MySqlErrorCode.ServerShutdown
            || (int)exception.ErrorCode == 0 // client-side: the stream broke
            || exception.InnerException is IOException or SocketException or EndOfStreamException;

    private static KvStoreException OutcomeUnknown(string operation, string table, Exception inner) => new(
        KvErrorCodes.OutcomeUnknown,
        $"The connection failed while committing {operation} on table '{table}'. The write may or may not have been applied; " +
        "read the key (its revision tells) before deciding to repeat it.",
        inner);
}
