using System.Net;
using System.Net.Sockets;
using System.Reflection;
using KvStore.Cdc;
using KvStore.Demo;
using KvStore.TestInfrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Playwright;

namespace KvStore.Samples.Tests;

/// <summary>
/// One fresh database, the demo app hosted in-process on a free loopback port (restartable on the
/// same port), and one headless Debian Chromium, shared by the browser tests (run one after another).
/// </summary>
public sealed class DemoFixture : TestDatabase
{
    private WebApplication? _app;
    private IPlaywright? _playwright;

    public int Port { get; } = FreePort();

    public string BaseUrl => $"http://127.0.0.1:{Port}";

    public IBrowser Browser { get; private set; } = null!;

    public KvStoreClient Kv => _app!.Services.GetRequiredService<KvStoreClient>();

    /// <summary>Screenshots go here (bin/.../artifacts).</summary>
    public static string ArtifactsDirectory { get; } = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "artifacts")).FullName;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await KvSchema.MigrateAsync(ConnectionString);
        await StartHostAsync();

        Assertions.SetDefaultExpectTimeout(15_000); // a loaded 2-core CI box is slow
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Environment.GetEnvironmentVariable("E2E_CHROMIUM") ?? "/usr/bin/chromium",
            Headless = true,
            Args =
            [
                "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                // Nothing leaves loopback (no DNS lookups for Google services).
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
            ],
        });
    }

    public override async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        _playwright?.Dispose();
        await StopHostAsync();
        await base.DisposeAsync();
    }

    public async Task StartHostAsync()
    {
        var contentRoot = typeof(DemoFixture).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "DemoContentRoot").Value!;
        _app = DemoApp.Build(
            new WebApplicationOptions { ApplicationName = typeof(DemoApp).Assembly.GetName().Name, ContentRootPath = contentRoot, EnvironmentName = "Production" },
            builder =>
            {
                builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["ConnectionStrings:KvStore"] = ConnectionString });
                builder.WebHost.UseUrls(BaseUrl);
                builder.Logging.ClearProviders();
            });
        await _app.StartAsync();

        // Changes are published once the CDC reader streams.
        var stream = _app.Services.GetRequiredService<KvChangeStream>();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (stream.Status.State != "streaming")
        {
            await Task.Delay(20, deadline.Token);
        }
    }

    public async Task StopHostAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }
    }

    /// <summary>A new browser context (one user) with a page; console errors and page errors are collected.</summary>
    public async Task<(IPage Page, List<string> Errors)> OpenAsync(string path)
    {
        var context = await Browser.NewContextAsync(new() { ViewportSize = new() { Width = 1100, Height = 800 } });
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                lock (errors)
                {
                    errors.Add(message.Text);
                }
            }
        };
        page.PageError += (_, error) =>
        {
            lock (errors)
            {
                errors.Add(error);
            }
        };
        await page.GotoAsync(BaseUrl + path);
        return (page, errors);
    }

    public static async Task ScreenshotAsync(IPage page, string name)
    {
        await page.ScreenshotAsync(new() { Path = Path.Combine(ArtifactsDirectory, name + ".png"), FullPage = true });
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

[CollectionDefinition("browser")]
public sealed class BrowserCollection : ICollectionFixture<DemoFixture>;
