using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Microsoft.AspNetCore.SignalR;
using MySqlConnector;

namespace KvStore.Bench.Realtime;

/// <summary>Latency samples in milliseconds, and their percentiles.</summary>
internal sealed class Latencies
{
    private readonly List<double> _values;

    public Latencies(int capacity = 1024) => _values = new List<double>(capacity);

    public int Count
    {
        get
        {
            lock (_values)
            {
                return _values.Count;
            }
        }
    }

    public static double Ms(long from, long to) => (to - from) * 1000.0 / Stopwatch.Frequency;

    public void Add(double ms)
    {
        lock (_values)
        {
            _values.Add(ms);
        }
    }

    public void AddRange(IEnumerable<double> values)
    {
        lock (_values)
        {
            _values.AddRange(values);
        }
    }

    public double Percentile(double p)
    {
        lock (_values)
        {
            if (_values.Count == 0)
            {
                return double.NaN;
            }

            _values.Sort();
            var rank = (int)Math.Ceiling(p / 100.0 * _values.Count) - 1;
            return _values[Math.Clamp(rank, 0, _values.Count - 1)];
        }
    }

    public double Max() => Percentile(100);

    /// <summary>"p50 / p99" in ms, "–" when empty.</summary>
    public string P50P99() => Count == 0 ? "–" : $"{F(Percentile(50))} / {F(Percentile(99))}";

    public static string F(double ms) => double.IsNaN(ms) ? "–" : ms < 10 ? ms.ToString("0.0", CultureInfo.InvariantCulture) : ms.ToString("N0", CultureInfo.InvariantCulture);
}

/// <summary>The outcome of an open-loop paced run of writes.</summary>
internal sealed class PacedResult
{
    public required int Scheduled { get; init; }

    public required long Ok { get; init; }

    public required long OkInWindow { get; init; }

    public required long Skipped { get; init; }

    public required long StillInFlight { get; init; }

    public required TimeSpan Window { get; init; }

    public required long Start { get; init; }

    public required Latencies Latency { get; init; }

    public required IReadOnlyDictionary<string, long> Errors { get; init; }

    /// <summary>The last call to finish (completion timestamp) and its result.</summary>
    public long LastDoneAt { get; init; }

    /// <summary>Answered calls per second, over the window or until the last answer when that came later (an overloaded host drains late).</summary>
    public double AchievedPerSecond => Ok / Math.Max(Window.TotalSeconds, LastDoneAt == 0 ? 0 : Latencies.Ms(Start, LastDoneAt) / 1000);

    public string ErrorSummary()
    {
        var parts = Errors.OrderByDescending(e => e.Value).Select(e => $"{e.Key} {e.Value}").ToList();
        if (Skipped > 0)
        {
            parts.Add($"not sent (in-flight cap) {Skipped}");
        }

        if (StillInFlight > 0)
        {
            parts.Add($"unanswered at the end {StillInFlight}");
        }

        return parts.Count == 0 ? "0" : string.Join(", ", parts);
    }
}

internal static class Load
{
    /// <summary>
    /// Open-loop pacing: call i is due at start + i / rate, whatever earlier calls cost, from
    /// connection i mod n; its latency is measured from when it was due (no coordinated omission). At
    /// most <paramref name="maxInFlight"/> calls are outstanding; a due call beyond that is not sent
    /// (counted). After the window, waits at most <paramref name="drain"/> for outstanding calls.
    /// </summary>
    public static async Task<PacedResult> PacedAsync<T>(
        int connections,
        double rate,
        TimeSpan duration,
        Func<long, int, Task<T>> call,
        Action<long, long, long, T>? done,
        TimeSpan drain,
        CancellationToken ct,
        int maxInFlight = 2000)
    {
        var count = (int)Math.Round(rate * duration.TotalSeconds);
        var latency = new Latencies(count);
        var errors = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        long inFlight = 0, ok = 0, okInWindow = 0, skipped = 0, lastDone = 0;
        var start = Stopwatch.GetTimestamp();
        var windowEnd = start + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        for (var i = 0; i < count && !ct.IsCancellationRequested; i++)
        {
            var due = start + (long)(i * (double)Stopwatch.Frequency / rate);
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
            if (wait > TimeSpan.FromMilliseconds(1))
            {
                await Task.Delay(wait, CancellationToken.None);
            }

            if (Interlocked.Read(ref inFlight) >= maxInFlight)
            {
                skipped++;
                continue;
            }

            Interlocked.Increment(ref inFlight);
            var index = i;
            _ = Task.Run(async () =>
            {
                try
                {
                    var result = await call(index, index % connections);
                    var now = Stopwatch.GetTimestamp();
                    latency.Add(Latencies.Ms(due, now));
                    Interlocked.Increment(ref ok);
                    if (now <= windowEnd)
                    {
                        Interlocked.Increment(ref okInWindow);
                    }

                    InterlockedMax(ref lastDone, now);
                    done?.Invoke(index, due, now, result);
                }
                catch (Exception ex)
                {
                    errors.AddOrUpdate(ErrorCode(ex), 1, (_, c) => c + 1);
                }
                finally
                {
                    Interlocked.Decrement(ref inFlight);
                }
            }, CancellationToken.None);
        }

        var remaining = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), windowEnd);
        if (remaining > TimeSpan.Zero)
        {
            await Task.Delay(remaining, CancellationToken.None);
        }

        await Load.UntilAsync(() => Interlocked.Read(ref inFlight) == 0, drain);

        return new PacedResult
        {
            Scheduled = count,
            Ok = Interlocked.Read(ref ok),
            OkInWindow = Interlocked.Read(ref okInWindow),
            Skipped = skipped,
            StillInFlight = Interlocked.Read(ref inFlight),
            Window = duration,
            Start = start,
            Latency = latency,
            Errors = errors,
            LastDoneAt = Interlocked.Read(ref lastDone),
        };
    }

    /// <summary>The protocol's error code of a failed call ("HubException: code: text"), else the exception type.</summary>
    public static string ErrorCode(Exception ex)
    {
        if (ex is HubException hub)
        {
            var at = hub.Message.IndexOf("HubException: ", StringComparison.Ordinal);
            var text = at >= 0 ? hub.Message[(at + "HubException: ".Length)..] : hub.Message;
            var colon = text.IndexOf(':', StringComparison.Ordinal);
            return colon > 0 && colon < 40 ? text[..colon] : "hub error";
        }

        return ex.GetType().Name;
    }

    public static void InterlockedMax(ref long target, long value)
    {
        var current = Interlocked.Read(ref target);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    /// <summary>
    /// Runs <paramref name="open"/> for indexes [from, to) with at most <paramref name="parallel"/> at a
    /// time, each retried up to 3 times; returns what opened and how many failed for good.
    /// </summary>
    public static async Task<(List<T> Opened, int Failed)> OpenAsync<T>(int from, int to, Func<int, CancellationToken, Task<T>> open, CancellationToken ct, int parallel = 200)
    {
        var opened = new ConcurrentBag<T>();
        var failed = 0;
        var lastError = "";
        await Parallel.ForEachAsync(Enumerable.Range(from, to - from), new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = ct }, async (i, token) =>
        {
            for (var attempt = 0; attempt < 3; attempt++)
            {
                try
                {
                    opened.Add(await open(i, token));
                    return;
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !token.IsCancellationRequested)
                {
                    lastError = ex.GetType().Name + ": " + ex.Message;
                    await Task.Delay(200 * (attempt + 1), token);
                }
            }

            Interlocked.Increment(ref failed);
        });
        if (failed > 0)
        {
            Console.Error.WriteLine($"  {failed} of {to - from} connections failed to open; last error: {lastError}");
        }

        return ([.. opened], failed);
    }

    /// <summary>Disposes clients with bounded concurrency.</summary>
    public static Task CloseAllAsync<T>(IEnumerable<T> clients) where T : IAsyncDisposable =>
        Parallel.ForEachAsync(clients, new ParallelOptions { MaxDegreeOfParallelism = 500 }, async (c, _) =>
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await c.DisposeAsync().AsTask().WaitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
            }
        });

    /// <summary>Polls <paramref name="condition"/> every 10 ms until it holds or <paramref name="timeout"/> passes; returns the time it took, or null.</summary>
    public static async Task<TimeSpan?> UntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var elapsed = Stopwatch.StartNew();
        while (!condition())
        {
            if (elapsed.Elapsed > timeout)
            {
                return null;
            }

            await Task.Delay(10);
        }

        return elapsed.Elapsed;
    }
}

/// <summary>Statement counters of MariaDB (SHOW GLOBAL STATUS), for statements/s over a window.</summary>
internal sealed class SqlCounters
{
    private static readonly string[] Names = ["Questions", "Com_select", "Com_insert", "Com_update", "Com_delete", "Com_commit"];

    private SqlCounters(Dictionary<string, long> values, long timestamp)
    {
        Values = values;
        Timestamp = timestamp;
    }

    public Dictionary<string, long> Values { get; }

    public long Timestamp { get; }

    public static async Task<SqlCounters> ReadAsync(string adminConnectionString)
    {
        await using var connection = new MySqlConnection(adminConnectionString);
        await connection.OpenAsync();
        await using var command = new MySqlCommand("SHOW GLOBAL STATUS WHERE Variable_name IN ('" + string.Join("','", Names) + "')", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var values = new Dictionary<string, long>(StringComparer.OrdinalIgnoreCase);
        while (await reader.ReadAsync())
        {
            values[reader.GetString(0)] = long.Parse(reader.GetString(1), CultureInfo.InvariantCulture);
        }

        return new SqlCounters(values, Stopwatch.GetTimestamp());
    }

    /// <summary>Statements per second since <paramref name="before"/>: all (Questions, less this reader's one per read), and writes (insert+update+delete).</summary>
    public (double All, double Writes, double Selects) RatesSince(SqlCounters before)
    {
        var seconds = Latencies.Ms(before.Timestamp, Timestamp) / 1000;
        double Delta(string name) => Values.GetValueOrDefault(name) - before.Values.GetValueOrDefault(name);
        return ((Delta("Questions") - 1) / seconds, (Delta("Com_insert") + Delta("Com_update") + Delta("Com_delete")) / seconds, Delta("Com_select") / seconds);
    }
}
