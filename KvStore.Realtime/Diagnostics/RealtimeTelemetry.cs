using System.Diagnostics.Metrics;

namespace KvStore.Realtime.Diagnostics;

/// <summary>The package's <see cref="Meter"/>, named <c>KvStore.Realtime</c>.</summary>
internal static class RealtimeTelemetry
{
    public const string Name = "KvStore.Realtime";

    public static readonly Meter Meter = new(Name);

    public static readonly UpDownCounter<long> Connections = Meter.CreateUpDownCounter<long>("kvstore.realtime.connections", "{connection}", "Open hub connections.");
    public static readonly Counter<long> RefusedConnections = Meter.CreateCounter<long>("kvstore.realtime.connections.refused", "{connection}", "Connections refused at the connection cap.");
    public static readonly Counter<long> FanOutMessages = Meter.CreateCounter<long>("kvstore.realtime.fanout.messages", "{message}", "Messages written or queued to connections by group sends.");
    public static readonly Histogram<double> FanOutDrainWait = Meter.CreateHistogram<double>("kvstore.realtime.fanout.drain_wait", "ms", "Time the fan-out thread waited for the thread pool to drain after a slice of writes.");
    public static readonly Counter<long> Frames = Meter.CreateCounter<long>("kvstore.realtime.frames", "{frame}", "changes frames published to table groups.");
    public static readonly Counter<long> CoalescedBatches = Meter.CreateCounter<long>("kvstore.realtime.frames.coalesced", "{batch}", "Transactions merged into a later frame because their table was hot.");
    public static readonly Counter<long> SlowConsumerDisconnects = Meter.CreateCounter<long>("kvstore.realtime.slow_consumer_disconnects", "{connection}", "Connections closed because their outbox was full.");
    public static readonly Counter<long> Subscribes = Meter.CreateCounter<long>("kvstore.realtime.subscribes", "{subscribe}", "Subscribes by mode (snapshot, resume, reset) and source (memory, database).");
    public static readonly Counter<long> IncrementStatements = Meter.CreateCounter<long>("kvstore.realtime.increment.statements", "{statement}", "SQL increments issued by the increment batcher (each merges one or more calls).");
    public static readonly Counter<long> IncrementCalls = Meter.CreateCounter<long>("kvstore.realtime.increment.calls", "{call}", "Increment calls received.");
    public static readonly Counter<long> ChangeBatches = Meter.CreateCounter<long>("kvstore.realtime.change_batches", "{transaction}", "Committed transactions received from the change stream.");
}
