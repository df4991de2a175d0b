using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace KvStore.Diagnostics;

/// <summary>The package's one <see cref="ActivitySource"/> and one <see cref="Meter"/>, both named <c>KvStore</c>.</summary>
internal static class KvStoreTelemetry
{
    public const string Name = "KvStore";

    public static readonly ActivitySource ActivitySource = new(Name);
    public static readonly Meter Meter = new(Name);

    public static readonly Counter<long> Operations = Meter.CreateCounter<long>(
        "kvstore.operations", "{operation}", "KvStore operations by name and outcome.");

    public static readonly Histogram<double> OperationDuration = Meter.CreateHistogram<double>(
        "kvstore.operation.duration", "s", "Duration of KvStore operations, retries included.");

    public static readonly Counter<long> Retries = Meter.CreateCounter<long>(
        "kvstore.retries", "{retry}", "Retries of operations that certainly did not commit, by reason (deadlock, lock_wait_timeout, connect).");

    public static readonly Counter<long> Expired = Meter.CreateCounter<long>(
        "kvstore.expiry.expired", "{key}", "Keys turned into expired tombstones by the expiry service.");

    public static readonly Counter<long> Purged = Meter.CreateCounter<long>(
        "kvstore.expiry.purged", "{key}", "Tombstones purged after the retention window.");
}
