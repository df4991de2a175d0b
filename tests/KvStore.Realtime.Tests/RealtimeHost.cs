using System.Security.Claims;
using KvStore.Cdc;
using KvStore.TestInfrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KvStore.Realtime.Tests;

/// <summary>A real Kestrel host with KvStore, the CDC reader and the realtime hub/API on a free port.</summary>
public sealed class RealtimeHost : IAsyncDisposable
{
    private readonly Action<IServiceCollection>? _services;
    private readonly bool _changeStream;
    private WebApplication? _app;

    private RealtimeHost(string connectionString, int port, Action<KvRealtimeOptions>? configure, Action<IServiceCollection>? services, bool changeStream)
    {
        ConnectionString = connectionString;
        Port = port;
        Configure = configure;
        _services = services;
        _changeStream = changeStream;
    }

    public string ConnectionString { get; }

    public int Port { get; }

    public Action<KvRealtimeOptions>? Configure { get; }

    public string BaseUrl => $"http://127.0.0.1:{Port}";

    public IServiceProvider Services => _app!.Services;

    /// <summary>Tables whose name starts with "secret" are unreadable; "readonly" ones unwritable.</summary>
    public static IKvAccessPolicy TestPolicy { get; } = KvAccessPolicies.Create(
        (_, table) => !table.StartsWith("secret", StringComparison.Ordinal),
        (_, table) => !table.StartsWith("secret", StringComparison.Ordinal) && !table.StartsWith("readonly", StringComparison.Ordinal));

    /// <param name="connectionString">The test database.</param>
    /// <param name="configure">Realtime options on top of the test defaults.</param>
    /// <param name="port">A fixed port (restart tests), else a free one.</param>
    /// <param name="waitForStream">Wait until the change stream streams.</param>
    /// <param name="services">More registrations (e.g. the Redis backplane).</param>
    /// <param name="changeStream">Register the CDC reader; false for a hub node fed by a publisher process.</param>
    public static async Task<RealtimeHost> StartAsync(
        string connectionString,
        Action<KvRealtimeOptions>? configure = null,
        int? port = null,
        bool waitForStream = true,
        Action<IServiceCollection>? services = null,
        bool changeStream = true)
    {
        var host = new RealtimeHost(connectionString, port ?? LocalServer.FreePort(), configure, services, changeStream);
        await host.StartAsync(waitForStream && changeStream);
        return host;
    }

    /// <summary>The change stream with the short test intervals.</summary>
    public static void AddTestChangeStream(IServiceCollection services, string connectionString) =>
        services.AddKvChangeStream(o =>
        {
            o.ConnectionString = connectionString;
            o.HeartbeatInterval = TimeSpan.FromMilliseconds(500);
            o.LeaderRetryInterval = TimeSpan.FromMilliseconds(200);
            o.ReconnectBaseDelay = TimeSpan.FromMilliseconds(50);
            o.MaxReconnectDelay = TimeSpan.FromMilliseconds(500);
        });

    /// <summary>Waits (with a deadline) until the change stream of <paramref name="services"/> streams: changes are published from then on.</summary>
    public static async Task WaitForStreamAsync(IServiceProvider services)
    {
        var stream = services.GetRequiredService<KvChangeStream>();
        await Eventually.UntilAsync(() => stream.Status.State == "streaming", () => $"The change stream did not start: {stream.Status}");
    }

    public async Task StartAsync(bool waitForStream = true)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(BaseUrl);
        builder.Logging.ClearProviders();
        builder.Services.AddKvStore(ConnectionString);
        builder.Services.AddKvStoreExpiry(o =>
        {
            o.Interval = TimeSpan.FromMilliseconds(50);
            o.LockName = "expiry-" + new MySqlConnector.MySqlConnectionStringBuilder(ConnectionString).Database;
        });
        if (_changeStream)
        {
            AddTestChangeStream(builder.Services, ConnectionString);
        }

        builder.Services.AddSingleton(TestPolicy);
        builder.Services.AddKvRealtime(o =>
        {
            o.ProgressInterval = TimeSpan.FromSeconds(1);
            Configure?.Invoke(o);
        });
        _services?.Invoke(builder.Services);
        _app = builder.Build();
        _app.MapKvHub("/hubs/kv");
        _app.MapKvApi("/v1");
        _app.MapKvHealth();
        await _app.StartAsync();
        if (!waitForStream || !_changeStream)
        {
            return;
        }

        await WaitForStreamAsync(_app.Services);
    }

    public async Task StopAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}

/// <summary>A fresh database with the schema, and one realtime host on it, per test class.</summary>
public sealed class RealtimeFixture : TestDatabase
{
    public RealtimeHost Host { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await KvSchema.MigrateAsync(ConnectionString);
        Host = await RealtimeHost.StartAsync(ConnectionString, o => o.SubscriberLimit = t => t.StartsWith("small", StringComparison.Ordinal) ? 2 : null);
    }

    public override async Task DisposeAsync()
    {
        await Host.DisposeAsync();

        await base.DisposeAsync();
    }
}

internal static class ClaimsExtensions
{
    public static ClaimsPrincipal Anonymous => new(new ClaimsIdentity());
}
