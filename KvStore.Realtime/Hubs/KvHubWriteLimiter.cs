using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace KvStore.Realtime.Hubs;

/// <summary>
/// The hub's write rate limit per connection: one partitioned token bucket for the node, so a connection
/// that never writes costs nothing (its bucket is made on its first write, and dropped again once full
/// and idle), and one timer replenishes every bucket instead of one timer per connection.
/// </summary>
internal sealed class KvHubWriteLimiter : IDisposable
{
    private readonly PartitionedRateLimiter<string> _limiter;

    public KvHubWriteLimiter(IOptions<KvRealtimeOptions> options)
    {
        var bucket = Bucket(options.Value);
        _limiter = PartitionedRateLimiter.Create<string, string>(connectionId => RateLimitPartition.GetTokenBucketLimiter(connectionId, _ => bucket));
    }

    /// <summary>
    /// One writer's token bucket (hub connection or HTTP client). In a partitioned limiter its replenishment
    /// is driven by the limiter's single timer, not one of its own.
    /// </summary>
    public static TokenBucketRateLimiterOptions Bucket(KvRealtimeOptions options) => new()
    {
        TokenLimit = options.WriteBurst,
        TokensPerPeriod = options.WritesPerSecond,
        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
        QueueLimit = 0,
        AutoReplenishment = true,
    };

    /// <summary>Takes one write from the connection's bucket; false when it is empty.</summary>
    public bool TryAcquire(string connectionId)
    {
        using var lease = _limiter.AttemptAcquire(connectionId);
        return lease.IsAcquired;
    }

    public void Dispose() => _limiter.Dispose();
}
