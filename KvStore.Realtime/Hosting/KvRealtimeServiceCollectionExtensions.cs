using KvStore.Cdc;
using KvStore.Realtime;
using KvStore.Realtime.Claps;
using KvStore.Realtime.Http;
using KvStore.Realtime.Hubs;
using KvStore.Realtime.Publishing;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers KvStore.Realtime: the hub, the HTTP API services and (by default) the in-process change publisher.</summary>
public static class KvRealtimeServiceCollectionExtensions
{
    /// <summary>
    /// Registers the realtime services. Needs <c>AddKvStore(...)</c>, and for the publisher an
    /// <see cref="IKvChangeSource"/> (<c>AddKvChangeStream(...)</c> from KvStore.Cdc). Without an
    /// <see cref="IKvAccessPolicy"/> registration, only authenticated users may read and write.
    /// </summary>
    public static IServiceCollection AddKvRealtime(this IServiceCollection services, Action<KvRealtimeOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<KvRealtimeOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.Validate(
            o => o.MaxSubscribersPerTable > 0 && o.SnapshotPageSize is > 0 and <= 1000 && o.MaxMessageBytes > 0 && o.WritesPerSecond > 0 &&
                 o.WriteBurst > 0 && o.MaxConnections > 0 && o.MaxQueuedMessagesPerConnection > 0 && o.MaxFramesPerSecondPerTable > 0 &&
                 o.ProgressInterval > TimeSpan.Zero && o.IncrementWindow >= TimeSpan.Zero && o.StreamReadyTimeout >= TimeSpan.Zero,
            "KvRealtimeOptions: limits must be positive, SnapshotPageSize at most 1000, windows non-negative.").ValidateOnStart();

        services.TryAddSingleton(KvAccessPolicies.AuthenticatedUsers);
        services.TryAddSingleton<KvSubscriptions>();
        services.TryAddSingleton<KvIncrementBatcher>();
        services.TryAddSingleton<KvHttpRateLimiter>();
        services.TryAddSingleton<KvWriteRateFilter>();
        services.TryAddSingleton<KvMetricsSnapshot>();
        services.AddSingleton<HubLifetimeManager<KvHub>, KvHubLifetimeManager>();
        services.AddSignalR(o => o.AddFilter<KvHubErrorFilter>())
            .AddHubOptions<KvHub>(_ => { })
            .AddJsonProtocol();
        services.AddSingleton<IConfigureOptions<HubOptions<KvHub>>, ConfigureHubOptions>();
        services.AddSingleton<KvHubErrorFilter>();
        services.AddHealthChecks().AddCheck<KvReadinessCheck>("kvstore", tags: ["ready"]);
        services.TryAddSingleton<KvChangePublisher>();
        services.AddHostedService(sp => sp.GetRequiredService<KvChangePublisher>());
        return services;
    }

    private sealed class ConfigureHubOptions(IOptions<KvRealtimeOptions> options) : IConfigureOptions<HubOptions<KvHub>>
    {
        public void Configure(HubOptions<KvHub> hub) => hub.MaximumReceiveMessageSize = options.Value.MaxMessageBytes;
    }
}
