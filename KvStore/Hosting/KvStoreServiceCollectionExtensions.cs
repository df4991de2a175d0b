using KvStore;
using KvStore.Expiry;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers KvStore with dependency injection.</summary>
public static class KvStoreServiceCollectionExtensions
{
    /// <summary>
    /// Registers a singleton <see cref="KvStoreClient"/> (also as <see cref="IKvStore"/>) for
    /// <paramref name="connectionString"/>; options are validated when the host starts.
    /// </summary>
    public static IServiceCollection AddKvStore(this IServiceCollection services, string connectionString, Action<KvStoreOptions>? configure = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        return services.AddKvStore(options =>
        {
            options.ConnectionString = connectionString;
            configure?.Invoke(options);
        });
    }

    /// <summary>Registers KvStore with options configured by <paramref name="configure"/> (or bound from configuration beforehand).</summary>
    public static IServiceCollection AddKvStore(this IServiceCollection services, Action<KvStoreOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<KvStoreOptions>().Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<KvStoreOptions>, KvStoreOptionsValidator>());
        services.TryAddSingleton(sp => new KvStoreClient(
            sp.GetRequiredService<IOptions<KvStoreOptions>>().Value,
            sp.GetService<Microsoft.Extensions.Logging.ILoggerFactory>()));
        services.TryAddSingleton<IKvStore>(sp => sp.GetRequiredService<KvStoreClient>());
        return services;
    }

    /// <summary>
    /// Opts into the expiry service: a hosted service that turns expired keys into tombstones (so
    /// subscribers see an <c>expired</c> change) and purges tombstones after the retention window.
    /// Run it in as many processes as you like; a MySQL lock keeps exactly one active.
    /// </summary>
    public static IServiceCollection AddKvStoreExpiry(this IServiceCollection services, Action<KvExpiryOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = services.AddOptions<KvExpiryOptions>();
        if (configure is not null)
        {
            builder.Configure(configure);
        }

        builder.Validate(o => o.Interval > TimeSpan.Zero && o.BatchSize is > 0 and <= 10_000 && o.MaxBatchesPerCycle > 0 && o.TombstoneRetention >= TimeSpan.Zero && !string.IsNullOrEmpty(o.LockName),
            "KvExpiryOptions: Interval > 0, BatchSize 1..10000, MaxBatchesPerCycle > 0, TombstoneRetention >= 0 and LockName are required.").ValidateOnStart();
        services.AddHostedService<KvExpiryService>();
        return services;
    }
}
