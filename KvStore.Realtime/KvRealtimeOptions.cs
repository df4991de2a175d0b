namespace KvStore.Realtime;

/// <summary>Settings of the realtime hub, HTTP API and change publisher.</summary>
public sealed class KvRealtimeOptions
{
    /// <summary>Most subscribers one table may have on one node. Default 100. See <see cref="SubscriberLimit"/> for per-table overrides.</summary>
    public int MaxSubscribersPerTable { get; set; } = 100;

    /// <summary>Optional per-table subscriber limit (return null to use <see cref="MaxSubscribersPerTable"/>), e.g. larger for article counters.</summary>
    public Func<string, int?>? SubscriberLimit { get; set; }

    /// <summary>Most entries a subscribe returns inline; larger tables continue with the list API. Default 500.</summary>
    public int SnapshotPageSize { get; set; } = 500;

    /// <summary>Largest message a client may send to the hub, in bytes. Default 1 MiB + 64 KiB.</summary>
    public long MaxMessageBytes { get; set; } = (1024 * 1024) + (64 * 1024);

    /// <summary>Writes one connection (hub) or one client (HTTP, by user or IP) may make per second. Default 50.</summary>
    public int WritesPerSecond { get; set; } = 50;

    /// <summary>Burst allowance on top of <see cref="WritesPerSecond"/>. Default 100.</summary>
    public int WriteBurst { get; set; } = 100;

    /// <summary>Most hub connections one node accepts; further ones are refused. Default 20,000.</summary>
    public int MaxConnections { get; set; } = 20_000;

    /// <summary>
    /// Messages queued for one connection before it is considered a slow consumer and disconnected
    /// with reason <c>slow_consumer</c> (it resumes on reconnect). Bounds server memory. Default 256.
    /// </summary>
    public int MaxQueuedMessagesPerConnection { get; set; } = 256;

    /// <summary>
    /// Bytes of serialized messages queued for one connection before it is a slow consumer (see
    /// <see cref="MaxQueuedMessagesPerConnection"/>); one message is always accepted into an empty queue,
    /// so a single frame larger than this still goes out. Default 16 MiB.
    /// </summary>
    public long MaxQueuedBytesPerConnection { get; set; } = 16L * 1024 * 1024;

    /// <summary>
    /// Most <c>changes</c> frames per second sent to one table's subscribers; faster changes are merged
    /// (latest value per key). A table's next frame also waits until the previous one has been written to
    /// every subscriber on the node, so a busy node sends fewer, fresher frames. Default 10.
    /// </summary>
    public int MaxFramesPerSecondPerTable { get; set; } = 10;

    /// <summary>
    /// Most database reads that subscribes (snapshots, resumes) run at once on one node; more wait their
    /// turn, so a reconnect storm does not pile onto the database. Default 16.
    /// </summary>
    public int MaxConcurrentSubscribeReads { get; set; } = 16;

    /// <summary>
    /// Memory for the recent state of busy tables (at least 4 subscribers on the node), from which
    /// subscribes and resumes are answered without a database read; 0 turns it off. Only where this
    /// process publishes to its own subscribers (not through a backplane). Default 64 MiB.
    /// </summary>
    public long HotTableCacheBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>How often idle subscribers get a <c>progress</c> message with the table revision. Default 15 s.</summary>
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Window in which increments of the same key are merged into one SQL statement. Default 25 ms.</summary>
    public TimeSpan IncrementWindow { get; set; } = TimeSpan.FromMilliseconds(25);

    /// <summary>
    /// Run the CDC reader and publisher in this process (one-node setup). Default true. Set false on
    /// hub nodes when a separate publisher process feeds them through the Redis backplane
    /// (<c>AddKvRedisBackplane</c>); the publisher process keeps it true and needs no hub endpoint.
    /// </summary>
    public bool RunPublisher { get; set; } = true;

    /// <summary>
    /// How long a subscribe waits for this process's change stream to be streaming (at start-up, or
    /// while it resynchronizes) before failing with <c>not_ready</c>. A snapshot taken before the stream
    /// has its start position could miss the changes in between. Default 10 s.
    /// </summary>
    public TimeSpan StreamReadyTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Clock for windows and timers. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Set by <c>AddKvRedisBackplane</c>: sends cross processes, so the publisher cannot see who subscribes.</summary>
    internal bool Backplane { get; set; }
}
