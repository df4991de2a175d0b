// bench realtime: KvStore.Realtime under the two workloads the product exists for (a realtime database
// of many small tables, and live claps: 10,000 readers of one article), against a stock SignalR host
// measured in the same run where a baseline exists (idle memory, fan-out). Issue 11, item 5.
//
// Reproduce (2 cores: build only this project, which builds the two hosts too; run one thing at a time):
//   dotnet build -c Release bench/KvStore.Bench
//   dotnet run -c Release --no-build --project bench/KvStore.Bench -- realtime                        # every scenario, defaults (~20 min)
//   dotnet run -c Release --no-build --project bench/KvStore.Bench -- realtime --scenario hot         # one scenario
//   dotnet run -c Release --no-build --project bench/KvStore.Bench -- realtime --scenario claps,db --connections 200 --seconds 5   # small and quick
// Options: --scenario idle,hot,claps,db,fanout,storm,backplane (default all, in that order)
//          --connections N  largest number of subscribed connections (default 10,000; scenarios scale down to it)
//          --seconds N      measured window per cell (default per scenario: hot 10, claps 20, db 15, fanout 10, storm 30, backplane 10)
//          --server-gc      run the hosts with DOTNET_gcServer=1 (default: workstation, concurrent GC)
//
// What runs: a private MariaDB (tests/KvStore.TestInfrastructure, sync_binlog=1,
// innodb_flush_log_at_trx_commit=1), one fresh database per scenario; the hosts are the Release builds
// of bench/KvStore.Bench.Host (KvStore.Realtime: hub, HTTP API, CDC; or hub-node / publisher modes with
// a private redis-server) and bench/StockSignalR.Host (stock SignalR, one group), started as
// `dotnet <dll>` child processes on 127.0.0.1 and killed (whole tree) when a scenario ends, fails or
// the run is interrupted. This process is the load generator: .NET SignalR clients (WebSockets,
// SkipNegotiation) that follow docs/protocol.md (BenchClient). It shares the machine's cores with the
// hosts and MariaDB; its CPU use is printed with every scenario.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using KvStore.TestInfrastructure;

namespace KvStore.Bench.Realtime;

internal sealed partial class RealtimeBenchmark : IAsyncDisposable
{
    public static readonly string[] AllScenarios = ["idle", "hot", "claps", "db", "fanout", "storm", "backplane"];

    private readonly MariaDbServer _server;
    private readonly int _maxConnections;
    private readonly int? _seconds;
    private readonly CancellationToken _ct;

    private RealtimeBenchmark(MariaDbServer server, int maxConnections, int? seconds, CancellationToken ct)
    {
        _server = server;
        _maxConnections = maxConnections;
        _seconds = seconds;
        _ct = ct;
    }

    /// <summary>Hosts run with DOTNET_gcServer=1 (--server-gc); default workstation GC.</summary>
    public static bool ServerGc { get; private set; }

    public static async Task<int> RunAsync(IReadOnlyList<string> scenarios, int? connections, int? seconds, bool serverGc)
    {
        ServerGc = serverGc;
        using var cts = new CancellationTokenSource();
        var interrupts = 0;
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            // First Ctrl+C: stop measuring and clean up; a second one: kill the hosts and leave.
            if (Interlocked.Increment(ref interrupts) == 1)
            {
                e.Cancel = true;
                Console.Error.WriteLine("interrupted: stopping the hosts and the database...");
                cts.Cancel();
            }
            else
            {
                ChildHost.KillAll();
            }
        };
        Console.CancelKeyPress += onCancel;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => ChildHost.KillAll();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            cts.Cancel();
        });

        var (soft, hard) = ProcFs.RaiseOpenFilesLimit();
        var failed = 0;
        try
        {
            await using var server = await MariaDbServer.StartAsync("rt", c =>
            {
                c.AppendLine("innodb_flush_log_at_trx_commit=1");
                c.AppendLine("sync_binlog=1");
                c.AppendLine("innodb_buffer_pool_size=512M");
                c.AppendLine("max_connections=2000");
            });
            await using var bench = new RealtimeBenchmark(server, connections ?? 10_000, seconds, cts.Token);
            await bench.PrintHeaderAsync(scenarios, soft, hard);
            foreach (var scenario in scenarios)
            {
                if (cts.IsCancellationRequested)
                {
                    break;
                }

                if (!await bench.RunScenarioAsync(scenario))
                {
                    failed++;
                }
            }
        }
        finally
        {
            ChildHost.KillAll();
            Console.CancelKeyPress -= onCancel;
        }

        return cts.IsCancellationRequested ? 130 : failed == 0 ? 0 : 1;
    }

    public ValueTask DisposeAsync()
    {
        ChildHost.KillAll();
        return ValueTask.CompletedTask;
    }

    private TimeSpan Seconds(int fallback) => TimeSpan.FromSeconds(_seconds ?? fallback);

    private async Task<bool> RunScenarioAsync(string scenario)
    {
        var wall = Stopwatch.StartNew();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        Console.WriteLine();
        Console.WriteLine($"## {scenario}");
        Console.WriteLine();
        try
        {
            await (scenario switch
            {
                "idle" => IdleAsync(),
                "hot" => HotAsync(),
                "claps" => ClapsAsync(),
                "db" => DbAsync(),
                "fanout" => FanoutAsync(),
                "storm" => StormAsync(),
                "backplane" => BackplaneAsync(),
                _ => throw new ArgumentException($"unknown scenario '{scenario}'"),
            });
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !_ct.IsCancellationRequested)
        {
            Console.WriteLine($"**{scenario} failed**: {ex.GetType().Name}: {ex.Message}");
            Console.Error.WriteLine(ex);
            return false;
        }
        finally
        {
            ChildHost.KillAll();
            var used = Process.GetCurrentProcess().TotalProcessorTime - cpu;
            Console.WriteLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"_{scenario}: {wall.Elapsed.TotalSeconds:0} s wall; load generator CPU {used.TotalSeconds / wall.Elapsed.TotalSeconds * 100:0} % of one core on average; load average now {ProcFs.LoadAverage()}_"));
        }
    }

    private async Task PrintHeaderAsync(IReadOnlyList<string> scenarios, ulong soft, ulong hard)
    {
        var cpuModel = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?";
        var memory = File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        Console.WriteLine($"# bench realtime — {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC; scenarios: {string.Join(", ", scenarios)}; up to {_maxConnections:N0} connections");
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"- machine: nproc {Environment.ProcessorCount} ({cpuModel}), {long.Parse(memory, CultureInfo.InvariantCulture) / 1024 / 1024} GiB, load average {ProcFs.LoadAverage()}, {RuntimeInformation.OSDescription}"));
        Console.WriteLine($"- software: .NET {Environment.Version}, MariaDB {await _server.ScalarAsync("SELECT VERSION()")} (innodb_flush_log_at_trx_commit=1, sync_binlog=1), RLIMIT_NOFILE {soft}/{hard}");
        Console.WriteLine($"- hosts: Release builds in child processes on 127.0.0.1, {(ServerGc ? "server GC (DOTNET_gcServer=1)" : "workstation concurrent GC")}, log level Warning");
        Console.WriteLine("- load generator: this process, .NET SignalR clients over WebSockets (SkipNegotiation), on the same machine: it takes up to about one of the cores, so the hosts and MariaDB share the rest");
    }

    private async Task<string> CreateDatabaseAsync(string name)
    {
        await _server.ExecuteAsync($"DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` CHARACTER SET utf8mb4");
        var cs = _server.ConnectionString(name);
        await KvSchema.MigrateAsync(cs);
        return cs;
    }

    /// <summary>Starts a KvStore host (node, hub or publisher mode) and waits for /readyz.</summary>
    private async Task<ChildHost> StartKvHostAsync(string cs, string name, int? port = null, string mode = "node", string? redis = null, int? framesPerSecond = null)
    {
        var args = new List<string> { "--ConnectionString=" + cs, "--Mode=" + mode };
        if (redis is not null)
        {
            args.Add("--Redis=" + redis);
        }

        if (framesPerSecond is { } f)
        {
            args.Add(string.Create(CultureInfo.InvariantCulture, $"--MaxFramesPerSecondPerTable={f}"));
        }

        var host = await ChildHost.StartAsync("KvStore.Bench.Host", name, port ?? LocalServer.FreePort(), args);
        await host.WaitReadyAsync(TimeSpan.FromSeconds(90), _ct);
        return host;
    }

    private async Task<ChildHost> StartStockHostAsync()
    {
        var host = await ChildHost.StartAsync("StockSignalR.Host", "stock", LocalServer.FreePort(), []);
        await host.WaitReadyAsync(TimeSpan.FromSeconds(60), _ct);
        return host;
    }

    /// <summary>Opens <paramref name="count"/> KvStore clients (indexes from <paramref name="first"/>), spread over <paramref name="urls"/>, each subscribed to <paramref name="table"/>(index) unless null.</summary>
    private async Task<List<BenchClient>> OpenKvClientsAsync(IReadOnlyList<string> urls, int first, int count, ClientCounters counters, Func<int, string>? table, Action<BenchClient>? configure = null)
    {
        var (opened, _) = await Load.OpenAsync(first, first + count, async (i, ct) =>
        {
            var client = new BenchClient(i, urls[i % urls.Count], counters);
            configure?.Invoke(client);
            try
            {
                await client.StartAsync(ct);
                if (table is not null)
                {
                    await client.SubscribeAsync(table(i), null, ct);
                }

                return client;
            }
            catch
            {
                await client.DisposeAsync();
                throw;
            }
        }, _ct);
        return opened;
    }

    /// <summary>
    /// Waits until every client satisfies <paramref name="done"/>; answers how long after
    /// <paramref name="from"/> the last of them applied its last change ("N ms"), or how many lag.
    /// </summary>
    private static async Task<string> ConvergenceAsync(List<BenchClient> clients, Func<BenchClient, bool> done, long from, TimeSpan timeout)
    {
        if (await Load.UntilAsync(() => clients.All(done), timeout) is null)
        {
            return $"{clients.Count(c => !done(c)):N0} of {clients.Count:N0} not after {timeout.TotalSeconds:0} s";
        }

        if (from == 0 || clients.Count == 0)
        {
            return "–";
        }

        var last = clients.Max(c => c.LastAppliedAt);
        return Latencies.F(Math.Max(0, Latencies.Ms(from, last))) + " ms";
    }

    /// <summary>Host stats without failing the scenario when the host is too busy to answer in time.</summary>
    private static async Task<KvStore.Bench.Hosting.BenchStats?> TryStatsAsync(ChildHost host, bool reset = false)
    {
        try
        {
            return await host.StatsAsync(reset);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    private static string Kb(double bytes) => (bytes / 1024).ToString("0.0", CultureInfo.InvariantCulture);

    private static string N0(double value) => double.IsNaN(value) ? "–" : value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Ratio(double a, double b) => b == 0 || double.IsNaN(a) || double.IsNaN(b) ? "–" : (a / b).ToString("0.00", CultureInfo.InvariantCulture) + "×";

    private static string Pct(double cpuMs, TimeSpan wall) => (cpuMs / wall.TotalMilliseconds * 100).ToString("0", CultureInfo.InvariantCulture) + " %";
}
