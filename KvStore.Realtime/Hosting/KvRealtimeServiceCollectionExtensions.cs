using KvStore.Cdc;
using KvStore.Realtime;
using KvStore.Realtime.Claps;
using KvStore.Realtime.Http;
using KvStore.Realtime.Hubs;
using KvStore.Realtime.Publishing;
using KvStore.Realtime.Snapshots;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.StackExchangeRedis;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers KvStore.Realtime: the hub, the HTTP API services, (by default) the in-process change publisher, and optionally the Redis backplane.</summary>
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
                 o.WriteBurst > 0 && o.MaxConnections > 0 && o.MaxQueuedMessagesPerConnection > 0 && o.MaxQueuedBytesPerConnection > 0 && o.MaxFramesPerSecondPerTable > 0 &&
                 o.MaxConcurrentSubscribeReads > 0 && o.HotTableCacheBytes >= 0 &&
                 o.ProgressInterval > TimeSpan.Zero && o.IncrementWindow >= TimeSpan.Zero && o.StreamReadyTimeout >= TimeSpan.Zero,
            "KvRealtimeOptions: limits must be positive, SnapshotPageSize at most 1000, windows non-negative.").ValidateOnStart();

        services.TryAddSingleton(KvAccessPolicies.AuthenticatedUsers);
        services.TryAddSingleton<KvSubscriptions>();
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<KvRealtimeOptions>>().Value;
            return new HotTableCache(o.TimeProvider, o.HotTableCacheBytes);
        });
        services.TryAddSingleton<SubscribeReader>();
        services.TryAddSingleton<KvHubWriteLimiter>();
        services.TryAddSingleton<KvIncrementBatcher>();
        services.TryAddSingleton<KvHttpRateLimiter>();
        services.TryAddSingleton<KvWriteRateFilter>();
        services.TryAddSingleton<KvMetricsSnapshot>();
        services.TryAddSingleton<KvHubLifetimeManager>();
        services.AddSingleton<HubLifetimeManager<KvHub>>(sp => sp.GetRequiredService<KvHubLifetimeManager>());
        services.AddHostedService<KvPresenceNotifier>();
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

    /// <summary>
    /// Connects the KvStore.Realtime processes through SignalR's Redis backplane
    /// (Microsoft.AspNetCore.SignalR.StackExchangeRedis), so a change publisher in one process reaches the
    /// subscribers of every hub node. Call it after <see cref="AddKvRealtime"/>, with the same Redis and
    /// channel prefix, in every hub node (<see cref="KvRealtimeOptions.RunPublisher"/> false) and in the
    /// publisher process (RunPublisher true, with <c>AddKvChangeStream</c>; it needs no Kestrel or hub
    /// endpoint). Bounded per-connection outboxes, <c>slow_consumer</c> closes and the connection cap stay
    /// in force on every node; presence and subscriber limits stay per node; delivery through Redis
    /// pub/sub is at most once. See docs/operations.md.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="redisConfiguration">A StackExchange.Redis configuration string, e.g. <c>redis1:6379,password=…</c>.</param>
    /// <param name="configure">
    /// Further Redis options, e.g. <c>Configuration.ChannelPrefix</c> (set one per deployment when
    /// several share a Redis). <see cref="RedisOptions"/> is SignalR's and shared with any other hub that
    /// uses its Redis backplane in the process.
    /// </param>
    public static IServiceCollection AddKvRedisBackplane(this IServiceCollection services, string redisConfiguration, Action<RedisOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(redisConfiguration);
        services.AddOptions<RedisOptions>()
            .Configure(o =>
            {
                o.Configuration = StackExchange.Redis.ConfigurationOptions.Parse(redisConfiguration);
                configure?.Invoke(o);
            })
            .Validate(o => o.ConnectionFactory is not null || o.Configuration.EndPoints.Count > 0, "RedisOptions: the Redis configuration names no endpoint.")
            .ValidateOnStart();
        services.Configure<KvRealtimeOptions>(o => o.Backplane = true);
        // Not registered as HubLifetimeManager<KvHub>: KvHubLifetimeManager stays the lifetime manager and
        // uses this one as its transport between processes (why: KvHubLifetimeManager's remarks).
        services.TryAddSingleton<RedisHubLifetimeManager<KvHub>>();
        return services;
    }

    private sealed class ConfigureHubOptions(IOptions<KvRealtimeOptions> options) : IConfigureOptions<HubOptions<KvHub>>
    {
        public void Configure(HubOptions<KvHub> hub) => hub.MaximumReceiveMessageSize = options.Value.MaxMessageBytes;
    }
}
