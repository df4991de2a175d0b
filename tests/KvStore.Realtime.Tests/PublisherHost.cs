using KvStore.Cdc;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace KvStore.Realtime.Tests;

/// <summary>
/// A publisher-only process as operations.md describes it: a generic host (no Kestrel, no hub endpoint)
/// with KvStore, the CDC reader and the realtime publisher, sending through the Redis backplane.
/// </summary>
public sealed class PublisherHost : IAsyncDisposable
{
    private readonly IHost _host;

    private PublisherHost(IHost host) => _host = host;

    public IServiceProvider Services => _host.Services;

    /// <param name="connectionString">The test database.</param>
    /// <param name="redis">The Redis configuration string.</param>
    /// <param name="configure">Realtime options on top of the test defaults.</param>
    /// <param name="source">A scripted change source instead of the CDC reader.</param>
    public static async Task<PublisherHost> StartAsync(string connectionString, string redis, Action<KvRealtimeOptions>? configure = null, IKvChangeSource? source = null)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddKvStore(connectionString);
        if (source is null)
        {
            RealtimeHost.AddTestChangeStream(builder.Services, connectionString);
        }
        else
        {
            builder.Services.AddSingleton(source);
        }

        builder.Services.AddKvRealtime(o =>
        {
            o.RunPublisher = true;
            o.ProgressInterval = TimeSpan.FromSeconds(1);
            configure?.Invoke(o);
        });
        builder.Services.AddKvRedisBackplane(redis, o => o.Configuration.ChannelPrefix = StackExchange.Redis.RedisChannel.Literal("kvtest"));
        var host = builder.Build();
        await host.StartAsync();
        if (source is null)
        {
            await RealtimeHost.WaitForStreamAsync(host.Services);
        }

        return new PublisherHost(host);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }
}
