using System.Diagnostics.Metrics;

namespace KvStore.Cdc.Diagnostics;

/// <summary>The package's <see cref="Meter"/>, named <c>KvStore.Cdc</c>.</summary>
internal static class CdcTelemetry
{
    public const string Name = "KvStore.Cdc";

    public static readonly Meter Meter = new(Name);

    public static readonly Counter<long> Events = Meter.CreateCounter<long>("kvstore.cdc.events", "{event}", "Binlog events read.");
    public static readonly Counter<long> Bytes = Meter.CreateCounter<long>("kvstore.cdc.bytes", "By", "Binlog bytes read.");
    public static readonly Counter<long> Transactions = Meter.CreateCounter<long>("kvstore.cdc.transactions", "{transaction}", "Committed transactions with KV changes handed to the consumer.");
    public static readonly Counter<long> Changes = Meter.CreateCounter<long>("kvstore.cdc.changes", "{change}", "KV changes handed to the consumer.");
    public static readonly Counter<long> Reconnects = Meter.CreateCounter<long>("kvstore.cdc.reconnects", "{reconnect}", "Reconnects after a transient failure.");
    public static readonly Counter<long> Takeovers = Meter.CreateCounter<long>("kvstore.cdc.leadership_acquired", "{event}", "Times this process became the active reader.");
}
