namespace KvStore;

/// <summary>Settings of the opt-in expiry service (<c>services.AddKvStoreExpiry()</c>).</summary>
public sealed class KvExpiryOptions
{
    /// <summary>Pause between two expiry cycles while there is nothing left to do. Default 1 s.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Most keys one transaction expires or purges; small batches keep locks short. Default 100.</summary>
    public int BatchSize { get; set; } = 100;

    /// <summary>Most batches one cycle processes before pausing. Default 50.</summary>
    public int MaxBatchesPerCycle { get; set; } = 50;

    /// <summary>How long tombstones (deleted and expired keys) are kept for resuming subscribers. Default 24 h.</summary>
    public TimeSpan TombstoneRetention { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Name of the MySQL <c>GET_LOCK</c> lock that keeps one instance active across processes. Default <c>kvstore.expiry</c>.</summary>
    public string LockName { get; set; } = "kvstore.expiry";
}
