using System.Text.Json;

namespace KvStore;

/// <summary>Settings of a <see cref="KvStoreClient"/>. Validated when the client is created.</summary>
public sealed class KvStoreOptions
{
    /// <summary>The largest value any deployment may configure: 16 MiB.</summary>
    public const int HardMaxValueBytes = 16 * 1024 * 1024;

    /// <summary>
    /// MySqlConnector connection string of the KvStore database (required). The client builds two pools
    /// from it, each bounded by its <c>Maximum Pool Size</c>: one for writes and snapshot reads, and one
    /// for single-statement reads, whose connections skip the reset between uses.
    /// </summary>
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>Largest accepted JSON value in UTF-8 bytes. Default 1 MiB; at most <see cref="HardMaxValueBytes"/>.</summary>
    public int MaxValueBytes { get; set; } = 1024 * 1024;

    /// <summary>Longest accepted TTL. Default 3650 days.</summary>
    public TimeSpan MaxTtl { get; set; } = TimeSpan.FromDays(3650);

    /// <summary>Most operations in one <see cref="KvBatch"/>. Default 100.</summary>
    public int MaxBatchOperations { get; set; } = 100;

    /// <summary>Largest page a list or changes read returns. Default 1000.</summary>
    public int MaxPageSize { get; set; } = 1000;

    /// <summary>How many times an operation that certainly did not commit (deadlock, lock wait timeout, connect failure) is retried. Default 4.</summary>
    public int MaxRetryAttempts { get; set; } = 4;

    /// <summary>First retry delay; later ones grow exponentially with jitter. Default 20 ms.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// Most unconditional puts that may wait in this client's put queue (puts arriving while its put
    /// transactions are busy queue and then run as group transactions). A put arriving when the queue
    /// is full fails at once with <see cref="KvStoreException"/> code <see cref="KvErrorCodes.Unavailable"/>
    /// and nothing written, rather than waiting without bound. Default 10,000; at least 1.
    /// </summary>
    public int MaxQueuedPuts { get; set; } = 10_000;

    /// <summary>Serializer options of the typed API (<c>GetAsync&lt;T&gt;</c>, <c>PutAsync&lt;T&gt;</c>). Default <see cref="JsonSerializerOptions.Web"/>.</summary>
    public JsonSerializerOptions JsonSerializerOptions { get; set; } = JsonSerializerOptions.Web;

    /// <summary>Clock for retry delays and background work. Default <see cref="TimeProvider.System"/>. Entry timestamps and expiry always use the database server's clock.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
