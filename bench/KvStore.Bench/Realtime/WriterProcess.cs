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
    /// <param name="Failed">Calls that failed or were still unanswered at the end.</param>
    /// <param name="Start">The window's start (<see cref="Stopwatch.GetTimestamp"/>: the monotonic clock, comparable across processes on Linux).</param>
    /// <param name="LastDoneAt">When the last call was answered (same clock).</param>
    /// <param name="Due">Per call: when it was due (0 when it was not answered).</param>
    /// <param name="Values">Per call: the value it returned (increments: the committed total).</param>
    internal sealed record Result(
        double Achieved, string Latency, double P99, double Max, string Errors, long LastRevision, long Ok, long Failed, long Start, long LastDoneAt, long[] Due, long[] Values);

    /// <summary>The line the writer prints when its measured window starts.</summary>
    private const string WindowLine = "window";

    /// <summary>The child's entry point: <c>realtime-writer BASEURL[,BASEURL…] TABLE KEY CONNECTIONS RATE SECONDS put|increment</c>; prints one JSON line.</summary>
    public static async Task<int> MainAsync(string[] args)
    {
        var urls = args[1].Split(',');
        var table = args[2];
        var key = args[3];
        var connections = int.Parse(args[4], CultureInfo.InvariantCulture);
        var rate = double.Parse(args[5], CultureInfo.InvariantCulture);
        var duration = TimeSpan.FromSeconds(double.Parse(args[6], CultureInfo.InvariantCulture));
        var increment = args.Length > 7 && args[7] == "increment";
        var counters = new ClientCounters();
        var (writers, _) = await Load.OpenAsync(0, connections, async (i, ct) =>
        {
            var client = new BenchClient(i, urls[i % urls.Length], counters);
            await client.StartAsync(ct);
            return client;
        }, CancellationToken.None);
        if (writers.Count < connections)
        {
            await Console.Error.WriteLineAsync($"only {writers.Count} of {connections} writer connections opened to {args[1]}");
            await Load.CloseAllAsync(writers);
            return 1;
        }

        try
        {
            Task<Change> Call(long i, int c) => increment ? writers[c].IncrementAsync(table, key, 1) : writers[c].PutAsync(table, key, i);

            // Warm-up (JIT, connections), not measured: puts of another key, so a counter stays exact.
            await Load.PacedAsync(writers.Count, Math.Min(rate, 200), TimeSpan.FromSeconds(2), (i, c) => writers[c].PutAsync(table, "warmup-" + key, i), null, TimeSpan.FromSeconds(10), CancellationToken.None);
            var count = (int)Math.Round(rate * duration.TotalSeconds);
            var due = new long[count];
            var values = new long[count];
            long last = 0;
            Console.WriteLine(WindowLine);
            var result = await Load.PacedAsync(
                writers.Count,
                rate,
                duration,
                Call,
                (i, dueAt, _, change) =>
                {
                    Load.InterlockedMax(ref last, change.Revision);
                    due[i] = dueAt;
                    values[i] = change.Value ?? -1;
                },
                TimeSpan.FromSeconds(15),
                CancellationToken.None,
                maxInFlight: (int)Math.Max(rate, 100));
            var failed = result.Errors.Values.Sum() + result.StillInFlight;
            Console.WriteLine(JsonSerializer.Serialize(
                new Result(result.AchievedPerSecond, result.Latency.P50P99(), result.Latency.Percentile(99), result.Latency.Max(), result.ErrorSummary(), last, result.Ok, failed, result.Start, result.LastDoneAt, due, values),
                Json));
            return 0;
        }
        finally
        {
            await Load.CloseAllAsync(writers);
        }
    }

    /// <summary>
    /// Runs the writer process against <paramref name="urls"/> (comma-separated base URLs; writer i uses
    /// URL i mod n) and returns what it measured; <paramref name="windowStarted"/> runs when its measured
    /// window begins (after it connected and warmed up).
    /// </summary>
    public static async Task<Result> RunAsync(string urls, string table, string key, int connections, double rate, TimeSpan duration, bool increment, CancellationToken ct, Action? windowStarted = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(typeof(WriterProcess).Assembly.Location);
        foreach (var arg in new[] { Verb, urls, table, key, connections.ToString(CultureInfo.InvariantCulture), rate.ToString(CultureInfo.InvariantCulture), duration.TotalSeconds.ToString(CultureInfo.InvariantCulture), increment ? "increment" : "put" })
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the writer process");
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(duration + TimeSpan.FromSeconds(90));
            var error = process.StandardError.ReadToEndAsync(timeout.Token);
            string? result = null;
            while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                if (line == WindowLine)
                {
                    windowStarted?.Invoke();
                }
                else if (line.StartsWith('{'))
                {
                    result = line;
                }
            }

            await process.WaitForExitAsync(timeout.Token);
            if (process.ExitCode != 0 || result is null)
            {
                throw new InvalidOperationException($"the writer process failed ({process.ExitCode}): {await error}");
            }

            return JsonSerializer.Deserialize<Result>(result, Json)!;
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
