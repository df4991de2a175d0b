using KvStore.Realtime;
using MySqlConnector;

namespace KvStore.Demo;

/// <summary>
/// The demo host: KvStore (writes, expiry), KvStore.Cdc (binlog change stream) and KvStore.Realtime
/// (hub at /hubs/kv, HTTP API at /v1, health) plus the static pages in wwwroot. Used by Program.cs
/// and, in-process, by the browser tests.
/// </summary>
public static class DemoApp
{
    /// <summary>Tables of article clap counters; each may have many more readers than the default limit.</summary>
    public const string ArticleTablePrefix = "article:";

    /// <summary>Builds the app; <paramref name="configure"/> may override configuration or services (tests).</summary>
    public static WebApplication Build(WebApplicationOptions options, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(options);
        configure?.Invoke(builder);

        var connectionString = builder.Configuration.GetConnectionString("KvStore");
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new InvalidOperationException("Set ConnectionStrings:KvStore (appsettings.json or the ConnectionStrings__KvStore environment variable).");
        }

        var database = new MySqlConnectionStringBuilder(connectionString).Database;
        var articleLimit = builder.Configuration.GetValue("Demo:ArticleSubscriberLimit", 20_000);

        builder.Services.AddKvStore(connectionString);
        // GET_LOCK names are server-wide: one expiry leader per database, not per server.
        builder.Services.AddKvStoreExpiry(o => o.LockName = "kvstore.expiry." + database);
        builder.Services.AddKvChangeStream(o => o.ConnectionString = connectionString);
        // A demo on a trusted machine: everyone may read and write every table.
        builder.Services.AddSingleton<IKvAccessPolicy>(KvAccessPolicies.AllowAnonymous);
        builder.Services.AddKvRealtime(o =>
            o.SubscriberLimit = table => table.StartsWith(ArticleTablePrefix, StringComparison.Ordinal) ? articleLimit : null);

        var app = builder.Build();
        app.UseDefaultFiles();
        app.UseStaticFiles();
        app.MapKvHub("/hubs/kv");
        app.MapKvApi("/v1");
        app.MapKvHealth();
        return app;
    }
}
