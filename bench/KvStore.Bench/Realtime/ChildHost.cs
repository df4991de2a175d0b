using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Runtime.InteropServices;

namespace KvStore.Bench.Realtime;

/// <summary>
/// A benchmark host (bench/KvStore.Bench.Host or bench/StockSignalR.Host, Release build) run as
/// <c>dotnet &lt;dll&gt;</c> in a child process. Every started host is listed until it is killed, so
/// <see cref="KillAll"/> (finally blocks, Ctrl+C, process exit) leaves nothing running.
/// </summary>
internal sealed class ChildHost : IAsyncDisposable
{
    private static readonly List<ChildHost> Running = [];
    private readonly Queue<string> _tail = new();
    private readonly HttpClient _http;
    private long _slowConsumerLogs;

    private ChildHost(string name, int port, Process process)
    {
        Name = name;
        Port = port;
        Process = process;
        _http = new HttpClient { BaseAddress = new Uri(BaseUrl), Timeout = TimeSpan.FromSeconds(30) };
    }

    public string Name { get; }

    public int Port { get; }

    public Process Process { get; }

    public int Pid => Process.Id;

    public string BaseUrl => string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{Port}");

    public HttpClient Http => _http;

    /// <summary>"slow consumer" warnings the host logged since it started.</summary>
    public long SlowConsumerLogs => Interlocked.Read(ref _slowConsumerLogs);

    /// <summary>The directory holding KvStore.sln, found from this program's output directory.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The Release dll of a bench host project (building it when it is missing).</summary>
    public static async Task<string> DllAsync(string project)
    {
        var dll = Path.Combine(RepoRoot, "bench", project, "bin", "Release", "net10.0", project + ".dll");
        if (!File.Exists(dll))
        {
            Console.Error.WriteLine($"building {project} (Release)...");
            var info = new ProcessStartInfo("dotnet") { WorkingDirectory = RepoRoot, UseShellExecute = false };
            foreach (var a in new[] { "build", "-c", "Release", Path.Combine("bench", project) })
            {
                info.ArgumentList.Add(a);
            }

            using var build = Process.Start(info) ?? throw new InvalidOperationException("dotnet build did not start");
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            await build.WaitForExitAsync(timeout.Token);
            if (build.ExitCode != 0 || !File.Exists(dll))
            {
                throw new InvalidOperationException($"dotnet build -c Release bench/{project} failed ({build.ExitCode})");
            }
        }

        return dll;
    }

    public static async Task<ChildHost> StartAsync(string project, string name, int port, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var dll = await DllAsync(project);
        var info = new ProcessStartInfo("dotnet")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        info.ArgumentList.Add(dll);
        info.ArgumentList.Add(string.Create(CultureInfo.InvariantCulture, $"--Port={port}"));
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        info.Environment["DOTNET_gcServer"] = RealtimeBenchmark.ServerGc ? "1" : "0";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = new Process { StartInfo = info };
        var host = new ChildHost(name, port, process);
        process.OutputDataReceived += (_, e) => host.OnOutput(e.Data);
        process.ErrorDataReceived += (_, e) => host.OnOutput(e.Data);
        lock (Running)
        {
            if (!process.Start())
            {
                throw new InvalidOperationException($"{name} did not start");
            }

            Running.Add(host);
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return host;
    }

    /// <summary>Waits (at most <paramref name="timeout"/>) until GET /readyz answers 200.</summary>
    public async Task WaitReadyAsync(TimeSpan timeout, CancellationToken ct)
    {
        var elapsed = Stopwatch.StartNew();
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (Process.HasExited)
            {
                throw new InvalidOperationException($"{Name} exited with {Process.ExitCode}:\n{Tail()}");
            }

            try
            {
                using var response = await _http.GetAsync("/readyz", ct);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            if (elapsed.Elapsed > timeout)
            {
                throw new TimeoutException($"{Name} not ready within {timeout.TotalSeconds:0} s:\n{Tail()}");
            }

            await Task.Delay(100, ct);
        }
    }

    public async Task<KvStore.Bench.Hosting.BenchStats> StatsAsync(bool reset = false)
    {
        var stats = await _http.GetFromJsonAsync<KvStore.Bench.Hosting.BenchStats>(reset ? "/bench/stats?reset=true" : "/bench/stats");
        return stats ?? throw new InvalidOperationException("no stats");
    }

    public async Task GcAsync()
    {
        using var response = await _http.PostAsync("/bench/gc", null);
        response.EnsureSuccessStatusCode();
    }

    /// <summary>Resident set size in bytes (VmRSS of /proc/&lt;pid&gt;/status).</summary>
    public long Rss() => ProcFs.RssBytes(Pid);

    /// <summary>User + system CPU time of the host, in milliseconds.</summary>
    public double CpuMs() => ProcFs.CpuMs(Pid);

    public string Tail()
    {
        lock (_tail)
        {
            return string.Join('\n', _tail);
        }
    }

    /// <summary>SIGKILL (the whole tree), as a crash would; waits for the exit.</summary>
    public void Kill()
    {
        try
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                Process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        lock (Running)
        {
            Running.Remove(this);
        }
    }

    /// <summary>Kills every host still running (finally blocks, Ctrl+C, process exit).</summary>
    public static void KillAll()
    {
        List<ChildHost> all;
        lock (Running)
        {
            all = [.. Running];
        }

        foreach (var host in all)
        {
            host.Kill();
        }
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        _http.Dispose();
        Process.Dispose();
        return ValueTask.CompletedTask;
    }

    private void OnOutput(string? line)
    {
        if (line is null)
        {
            return;
        }

        if (line.Contains("slow consumer", StringComparison.Ordinal))
        {
            Interlocked.Increment(ref _slowConsumerLogs);
        }

        lock (_tail)
        {
            _tail.Enqueue(line);
            while (_tail.Count > 40)
            {
                _tail.Dequeue();
            }
        }
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "KvStore.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"KvStore.sln not found above {AppContext.BaseDirectory}");
    }
}

/// <summary>Reads process state from /proc and raises RLIMIT_NOFILE.</summary>
internal static partial class ProcFs
{
    private const int RlimitNofile = 7;

    public static long RssBytes(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
            }
        }

        return 0;
    }

    public static double CpuMs(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // Fields after the command name (which may hold spaces) start after the last ')'.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return ticks * 10.0; // USER_HZ = 100 on Linux
        }
        catch (IOException)
        {
            return 0;
        }
    }

    public static string LoadAverage() => File.ReadAllText("/proc/loadavg").Trim();

    /// <summary>Raises the soft RLIMIT_NOFILE to the hard limit (children inherit it); returns (soft, hard) after.</summary>
    public static (ulong Soft, ulong Hard) RaiseOpenFilesLimit()
    {
        if (GetRLimit(RlimitNofile, out var limit) != 0)
        {
            throw new InvalidOperationException($"getrlimit failed: errno {Marshal.GetLastPInvokeError()}");
        }

        if (limit.Cur < limit.Max)
        {
            var raised = limit with { Cur = limit.Max };
            if (SetRLimit(RlimitNofile, in raised) != 0)
            {
                throw new InvalidOperationException($"setrlimit failed: errno {Marshal.GetLastPInvokeError()}");
            }
        }

        _ = GetRLimit(RlimitNofile, out limit);
        return (limit.Cur, limit.Max);
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRLimit(int resource, out RLimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int SetRLimit(int resource, in RLimit limit);

    [StructLayout(LayoutKind.Sequential)]
    private record struct RLimit(ulong Cur, ulong Max);
}
