using KvStore.Cdc;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the KvStore change stream.</summary>
public static class KvChangeStreamServiceCollectionExtensions
{
    /// <summary>
    /// Registers a singleton <see cref="KvChangeStream"/>, also as <see cref="IKvChangeSource"/> (which
    /// KvStore.Realtime's publisher consumes). The connection string needs replication privileges.
    /// </summary>
    public static IServiceCollection AddKvChangeStream(this IServiceCollection services, Action<KvChangeStreamOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<KvChangeStreamOptions>()
            .Configure(configure)
            .Validate(o => !string.IsNullOrWhiteSpace(o.ConnectionString), "KvChangeStreamOptions.ConnectionString is required.")
            .Validate(o => o.HeartbeatInterval > TimeSpan.Zero && o.LeaderRetryInterval > TimeSpan.Zero && o.MaxBufferedBatches > 0,
                "KvChangeStreamOptions: HeartbeatInterval and LeaderRetryInterval must be positive, MaxBufferedBatches at least 1.")
            .ValidateOnStart();
        services.TryAddSingleton(sp => new KvChangeStream(
            sp.GetRequiredService<IOptions<KvChangeStreamOptions>>().Value,
            sp.GetService<ILoggerFactory>()));
        services.TryAddSingleton<IKvChangeSource>(sp => sp.GetRequiredService<KvChangeStream>());
        return services;
    }
}
