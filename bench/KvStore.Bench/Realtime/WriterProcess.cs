using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace KvStore.Bench.Realtime;

/// <summary>
/// Writers in a process of their own. The load generator's 10,000 subscriber connections keep its own
/// thread pool busy with the frames they receive; a put answered by the host would then wait there too
/// and its latency would be the generator's, not the host's. This process only writes: one hub
/// connection per simulated user (a hub connection runs one invocation at a time, so a user writes at
/// most ~10/s), open-loop pacing, latency from when each call was due.
/// </summary>
internal static class WriterProcess
{
    public const string Verb = "realtime-writer";

    // Latencies are NaN when nothing was answered.
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>What one run of the writer process measured.</summary>
    internal sealed record Result(double Achieved, string Latency, double Max, string Errors, long LastRevision, long Ok);

    /// <summary>The child's entry point: <c>realtime-writer BASEURL TABLE KEY CONNECTIONS RATE SECONDS put|increment</c>; prints one JSON line.</summary>
    public static async Task<int> MainAsync(string[] args)
    {
        var url = args[1];
        var table = args[2];
        var key = args[3];
        var connections = int.Parse(args[4], CultureInfo.InvariantCulture);
        var rate = double.Parse(args[5], CultureInfo.InvariantCulture);
        var duration = TimeSpan.FromSeconds(double.Parse(args[6], CultureInfo.InvariantCulture));
        var increment = args.Length > 7 && args[7] == "increment";
        var counters = new ClientCounters();
        var (writers, _) = await Load.OpenAsync(0, connections, async (i, ct) =>
        {
            var client = new BenchClient(i, url, counters);
            await client.StartAsync(ct);
            return client;
        }, CancellationToken.None);
        if (writers.Count < connections)
        {
            await Console.Error.WriteLineAsync($"only {writers.Count} of {connections} writer connections opened to {url}");
            await Load.CloseAllAsync(writers);
            return 1;
        }

        try
        {
            Task<Change> Call(long i, int c) => increment ? writers[c].IncrementAsync(table, key, 1) : writers[c].PutAsync(table, key, i);

            // Warm-up (JIT, connections), not measured.
            await Load.PacedAsync(writers.Count, Math.Min(rate, 200), TimeSpan.FromSeconds(2), Call, null, TimeSpan.FromSeconds(10), CancellationToken.None);
            long last = 0;
            var result = await Load.PacedAsync(
                writers.Count,
                rate,
                duration,
                Call,
                (_, _, _, change) => Load.InterlockedMax(ref last, change.Revision),
                TimeSpan.FromSeconds(15),
                CancellationToken.None,
                maxInFlight: (int)Math.Max(rate, 100));
            Console.WriteLine(JsonSerializer.Serialize(new Result(result.AchievedPerSecond, result.Latency.P50P99(), result.Latency.Max(), result.ErrorSummary(), last, result.Ok), Json));
            return 0;
        }
        finally
        {
            await Load.CloseAllAsync(writers);
        }
    }

    /// <summary>Runs the writer process against <paramref name="url"/> and returns what it measured.</summary>
    public static async Task<Result> RunAsync(string url, string table, string key, int connections, double rate, TimeSpan duration, bool increment, CancellationToken ct)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(typeof(WriterProcess).Assembly.Location);
        foreach (var arg in new[] { Verb, url, table, key, connections.ToString(CultureInfo.InvariantCulture), rate.ToString(CultureInfo.InvariantCulture), duration.TotalSeconds.ToString(CultureInfo.InvariantCulture), increment ? "increment" : "put" })
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the writer process");
        try
        {
            var output = process.StandardOutput.ReadToEndAsync(ct);
            var error = process.StandardError.ReadToEndAsync(ct);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(duration + TimeSpan.FromSeconds(90));
            await process.WaitForExitAsync(timeout.Token);
            var line = (await output).Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
            if (process.ExitCode != 0 || line is null)
            {
                throw new InvalidOperationException($"the writer process failed ({process.ExitCode}): {await error}");
            }

            return JsonSerializer.Deserialize<Result>(line, Json)!;
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }
}
