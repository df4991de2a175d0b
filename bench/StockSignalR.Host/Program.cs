using System.Diagnostics;
using System.Globalization;
using KvStore.Bench.Hosting;
using Microsoft.AspNetCore.SignalR;

// The stock SignalR baseline of `bench realtime`: the same Kestrel and logging settings as the KvStore
// host, SignalR's DefaultHubLifetimeManager and JSON protocol, a hub whose Join() adds the caller to
// the one group "g". Args: --Port=5091.
//   POST /bench/send?n=N&bytes=B              N group sends through IHubContext, each awaited; answers the elapsed ms
//   POST /bench/broadcast?rate=R&seconds=S&bytes=B   sends R messages/s for S seconds in the background (latency)
// Every message is ("m", {seq, ts, data}) with ts = Stopwatch.GetTimestamp() (CLOCK_MONOTONIC, comparable across processes).
var builder = WebApplication.CreateSlimBuilder(args);
var port = builder.Configuration.GetValue("Port", 5091);
builder.WebHost.UseUrls(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}"));
builder.Logging.ClearProviders();
builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Services.AddSignalR().AddJsonProtocol();

var app = builder.Build();
app.MapHub<StockHub>("/hubs/stock");
app.MapGet("/readyz", () => Results.Json(new { status = "healthy" }));
app.MapBenchEndpoints();
app.MapPost("/bench/send", async (IHubContext<StockHub> hub, int n, int? bytes, CancellationToken ct) =>
{
    var data = new string('x', bytes ?? 200);
    var elapsed = Stopwatch.StartNew();
    for (var i = 0; i < n; i++)
    {
        await hub.Clients.Group(StockHub.Group).SendAsync("m", new StockMessage(i, Stopwatch.GetTimestamp(), data), ct);
    }

    return Results.Json(new { sent = n, elapsedMs = elapsed.Elapsed.TotalMilliseconds });
});
app.MapPost("/bench/broadcast", (IHubContext<StockHub> hub, IHostApplicationLifetime lifetime, int rate, double seconds, int? bytes) =>
{
    var data = new string('x', bytes ?? 200);
    var count = (int)Math.Round(rate * seconds);
    _ = Task.Run(async () =>
    {
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < count && !lifetime.ApplicationStopping.IsCancellationRequested; i++)
        {
            // Open loop: message i is due at start + i / rate, whatever the previous send cost.
            var due = start + (long)(i * (double)Stopwatch.Frequency / rate);
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait);
            }

            await hub.Clients.Group(StockHub.Group).SendAsync("m", new StockMessage(i, Stopwatch.GetTimestamp(), data));
        }
    });
    return Results.Json(new { scheduled = count });
});
await app.RunAsync();

/// <summary>One group, joined on request.</summary>
internal sealed class StockHub : Hub
{
    public const string Group = "g";

    public Task Join() => Groups.AddToGroupAsync(Context.ConnectionId, Group);
}

/// <summary>The message the baseline fans out.</summary>
internal sealed record StockMessage(int Seq, long Ts, string Data);
