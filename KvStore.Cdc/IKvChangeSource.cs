namespace KvStore.Cdc;

/// <summary>
/// A source of committed KV change batches, in commit order, with acknowledgement. Delivery is
/// at-least-once: after a restart the source continues right after the last acknowledged batch
/// that was persisted, so consumers de-duplicate by revision.
/// </summary>
public interface IKvChangeSource
{
    /// <summary>Streams batches until cancelled. Only one reader per stream name is active across processes.</summary>
    IAsyncEnumerable<KvChangeBatch> ReadAsync(CancellationToken cancellationToken = default);

    /// <summary>Marks <paramref name="batch"/> (and everything before it) as handled; its position becomes the restart point.</summary>
    ValueTask AcknowledgeAsync(KvChangeBatch batch, CancellationToken cancellationToken = default);

    /// <summary>
    /// After <see cref="ReadAsync"/> failed with <see cref="KvResyncRequiredException"/>: drops the
    /// stale checkpoint and makes the next read start at the server's current position. Call it once
    /// consumers have another way to catch up (KvStore.Realtime resumes subscribers from the database).
    /// </summary>
    ValueTask ResetToCurrentPositionAsync(CancellationToken cancellationToken = default);

    /// <summary>What the source is doing now (for health checks).</summary>
    KvChangeSourceStatus Status { get; }
}

/// <summary>The state of a change source.</summary>
/// <param name="State"><c>starting</c>, <c>standby</c> (another process is the active reader), <c>streaming</c>, <c>reconnecting</c> or <c>failed</c>.</param>
/// <param name="LastError">The last error, if any.</param>
/// <param name="LagSeconds">Seconds between the newest event seen and now, or null before the first event.</param>
public sealed record KvChangeSourceStatus(string State, string? LastError, double? LagSeconds);

/// <summary>
/// The stream cannot continue from its checkpoint without skipping changes (the binlog it needs was
/// purged, or the server was replaced without GTIDs). Consumers must resynchronize from the database.
/// </summary>
public sealed class KvResyncRequiredException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KvResyncRequiredException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}
