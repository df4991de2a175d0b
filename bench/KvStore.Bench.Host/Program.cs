using System.Globalization;
using KvStore.Bench.Hosting;
using KvStore.Realtime;

// The KvStore host of `bench realtime` (bench/KvStore.Bench/Realtime/RealtimeBenchmark.cs starts it).
// Configuration from args (--Key=value) or environment:
//   ConnectionString   the KvStore database (required)
//   Port               Kestrel port on 127.0.0.1 (default 5090)
//   Mode               node (CDC + publisher + hub, default) | hub (RunPublisher=false, fed through Redis)
//                      | publisher (CDC + publisher through Redis, no hub endpoint)
//   Redis              StackExchange.Redis configuration: adds the Redis backplane (needed by hub/publisher)
//   SubscriberLimit    subscribers per table per node (default 20,000)
//   WritesPerSecond    writes per connection per second (default 100,000; burst the same)
//   MaxFramesPerSecondPerTable, ProgressIntervalSeconds   optional overrides of the library defaults
var builder = WebApplication.CreateSlimBuilder(args);
var config = builder.Configuration;
var connectionString = config["ConnectionString"] ?? throw new InvalidOperationException("Set --ConnectionString=...");
var port = config.GetValue("Port", 5090);
var mode = config["Mode"] ?? "node";
if (mode is not ("node" or "hub" or "publisher"))
{
    throw new InvalidOperationException($"Mode is node, hub or publisher, not '{mode}'.");
}

var redis = config["Redis"];
if (mode is not "node" && string.IsNullOrEmpty(redis))
{
    throw new InvalidOperationException($"Mode={mode} needs --Redis=host:port.");
}

builder.WebHost.UseUrls(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}"));
builder.Logging.ClearProviders();
builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
builder.Logging.SetMinimumLevel(LogLevel.Warning);

builder.Services.AddKvStore(connectionString);
if (mode is not "hub")
{
    builder.Services.AddKvChangeStream(o => o.ConnectionString = connectionString);
}

builder.Services.AddSingleton<IKvAccessPolicy>(KvAccessPolicies.AllowAnonymous);
var subscriberLimit = config.GetValue("SubscriberLimit", 20_000);
var writesPerSecond = config.GetValue("WritesPerSecond", 100_000);
builder.Services.AddKvRealtime(o =>
{
    o.RunPublisher = mode is not "hub";
    o.MaxSubscribersPerTable = subscriberLimit;
    o.WritesPerSecond = writesPerSecond;
    o.WriteBurst = writesPerSecond;
    if (config.GetValue<int?>("MaxFramesPerSecondPerTable") is { } frames)
    {
        o.MaxFramesPerSecondPerTable = frames;
    }

    if (config.GetValue<double?>("ProgressIntervalSeconds") is { } progress)
    {
        o.ProgressInterval = TimeSpan.FromSeconds(progress);
    }
});
if (!string.IsNullOrEmpty(redis))
{
    builder.Services.AddKvRedisBackplane(redis, o => o.Configuration.ChannelPrefix = StackExchange.Redis.RedisChannel.Literal("kvbench"));
}

var app = builder.Build();
if (mode is not "publisher")
{
    app.MapKvHub("/hubs/kv");
}

app.MapKvApi("/v1");
app.MapKvHealth();
app.MapBenchEndpoints();
await app.RunAsync();
