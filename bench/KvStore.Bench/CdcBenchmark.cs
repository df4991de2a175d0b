using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using KvStore.Cdc;
using KvStore.TestInfrastructure;

namespace KvStore.Bench;

/// <summary>
/// Issue 3's change-data-capture benchmark, on a private MariaDB:
/// <list type="number">
/// <item>Decoder throughput: KvStore writes fill a binlog of at least <c>--mb</c> MB; our file pipeline
/// (BinlogFileReader → BinlogEventParser → KvChangeProjector, single-threaded) and
/// <c>mariadb-binlog --base64-output=decode-rows -v</c> then each decode the same closed files.</item>
/// <item>End-to-end latency: a <see cref="KvChangeStream"/> tails the binlog while a paced writer issues
/// <c>--rate</c> puts/s for <c>--seconds</c>; latency is when a change reaches the consumer minus when its
/// put returned (commit acknowledged), matched by (table, revision).</item>
/// </list>
/// </summary>
internal static class CdcBenchmark
{
    private const string Database = "bench";
    private const int Tables = 1000;
    private const int KeysPerTable = 100;
    private const int BatchSize = 50;
    private const int BlocksPerTable = KeysPerTable / BatchSize;

    /// <summary>Concurrent CommitAsync calls while filling the binlog: 64 × 50 = 3,200 puts in flight.</summary>
    private const int FillConcurrency = 64;

    /// <summary>Measured runs per decoder; the machine is shared, so the best and the median are both shown.</summary>
    private const int Runs = 5;

    /// <summary>Unreported passes of the whole pipeline before measuring, until tier-1 JIT code is in place.</summary>
    private const int WarmUpPasses = 4;

    public static async Task RunAsync(int targetMegabytes, int rate, TimeSpan duration, bool decode, bool latency)
    {
        // A binlog file as large as the server allows (1 GiB), so the fill stays in one file.
        await using var server = await MariaDbServer.StartAsync("cdcbench", c =>
        {
            c.AppendLine("max_binlog_size=1073741824");
            c.AppendLine("innodb_buffer_pool_size=512M");
            c.AppendLine("innodb_log_file_size=512M");
        });
        await server.ExecuteAsync($"CREATE DATABASE {Database}");
        var cs = server.ConnectionString(Database);
        await KvSchema.MigrateAsync(cs);
        await using var kv = new KvStoreClient(new KvStoreOptions { ConnectionString = cs });

        Console.WriteLine($"# KvStore.Cdc benchmark — MariaDB {await server.ScalarAsync("SELECT VERSION()")}, binlog ROW/FULL/FULL metadata, CRC32; " +
            $"{Environment.ProcessorCount} cores; .NET {Environment.Version}; load average {LoadAverage()}");
        Console.WriteLine();

        if (decode)
        {
            await DecodeAsync(server, kv, targetMegabytes);
        }

        if (latency)
        {
            await LatencyAsync(server, kv, cs, rate, duration);
        }
    }

    private static async Task DecodeAsync(MariaDbServer server, KvStoreClient kv, int targetMegabytes)
    {
        // Filling is not what is measured: trade durability for speed while it runs.
        await server.ExecuteAsync("SET GLOBAL sync_binlog = 0; SET GLOBAL innodb_flush_log_at_trx_commit = 2");
        var fill = Stopwatch.StartNew();
        var (batches, puts) = await FillAsync(server, kv, targetMegabytes * 1_000_000L);
        fill.Stop();

        // Close the file being written, so that both decoders read the same complete, closed files.
        await server.ExecuteAsync("FLUSH BINARY LOGS");
        var files = Directory.GetFiles(server.BinlogDirectory, "mariadb-bin.0*").Order(StringComparer.Ordinal).ToList();
        files.RemoveAt(files.Count - 1); // the new, still open file
        var totalBytes = files.Sum(f => new FileInfo(f).Length);
        Console.WriteLine("## Decoder throughput");
        Console.WriteLine();
        var inserts = Math.Min(batches, Tables * BlocksPerTable) * BatchSize;
        Console.WriteLine($"Binlog: {files.Count} file(s), {totalBytes / 1e6:N1} MB, written by {puts:N0} puts ({inserts:N0} inserts, {puts - inserts:N0} updates) " +
            $"in {batches:N0} CommitAsync batches of {BatchSize} ({Tables:N0} tables × {KeysPerTable} keys, ~190-byte JSON values, {FillConcurrency} batches in flight) " +
            $"in {fill.Elapsed.TotalSeconds:N1} s.");
        Console.WriteLine();

        Console.WriteLine($"| decoder (single-threaded) | wall s best / median of {Runs} | CPU s (median run) | MB/s (best) | row changes | row changes/s best / median |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");

        // The first pass of a fresh process runs tier-0 and PGO-instrumented code: report it apart, then
        // warm up until tier-1 code is in place (a change stream runs for days, so that is the steady state).
        var cold = Measure(1, () => CdcDecoder.Run(files, Database, CdcDecoder.Depth.Project).Changes);
        for (var i = 0; i < WarmUpPasses; i++)
        {
            CdcDecoder.Run(files, Database, CdcDecoder.Depth.Project);
        }

        // Where the time goes: the reader alone, plus the parser, plus the projector (the whole pipeline).
        var read = Measure(Runs, () => CdcDecoder.Run(files, Database, CdcDecoder.Depth.Read).Events);
        var parse = Measure(Runs, () => CdcDecoder.Run(files, Database, CdcDecoder.Depth.Parse).Events);
        var ours = Measure(Runs, () => CdcDecoder.Run(files, Database, CdcDecoder.Depth.Project).Changes);
        var changes = ours.Count;

        // KvChange defers checking and parsing the value to its consumer: what each kind of consumer then pays.
        var utf8 = Measure(Runs, () => CdcDecoder.Run(files, Database, CdcDecoder.Depth.ProjectAndReadUtf8).Changes);
        var value = Measure(Runs, () => CdcDecoder.Run(files, Database, CdcDecoder.Depth.ProjectAndParseValue).Changes);
        Row("KvStore.Cdc: BinlogFileReader only", read, totalBytes, null);
        Row("KvStore.Cdc: reader + BinlogEventParser (CRC32 checked)", parse, totalBytes, null);
        Row("**KvStore.Cdc: reader + parser + KvChangeProjector → KvChange**", ours, totalBytes, changes);
        Row("KvStore.Cdc: … + every value read as `ValueUtf8` (JSON checked)", utf8, totalBytes, changes);
        Row("KvStore.Cdc: … + every value read as `Value` (JsonElement parsed)", value, totalBytes, changes);
        Console.WriteLine($"| KvStore.Cdc, whole pipeline, first pass in a fresh process (JIT tier 0) | {cold.Best:N2} | {cold.MedianCpu:N2} | {totalBytes / 1e6 / cold.Best:N0} | {changes:N0} | {changes / cold.Best:N0} |");

        // The reference: the server's own decoder, text output thrown away; the first run only warms the page cache.
        await RunMariaDbBinlogAsync(files);
        var runs = new List<(double Wall, double Cpu)>();
        for (var i = 0; i < Runs; i++)
        {
            var (wall, cpu) = await RunMariaDbBinlogAsync(files);
            runs.Add((wall.TotalSeconds, cpu.TotalSeconds));
        }

        var theirs = Timings.From(runs, changes);
        Row("mariadb-binlog --base64-output=decode-rows -v > /dev/null", theirs, totalBytes, changes);
        Console.WriteLine();
        Console.WriteLine($"KvStore.Cdc / mariadb-binlog, row changes/s: **{theirs.Best / ours.Best:N1}×** best vs best, {theirs.Median / ours.Median:N1}× median vs median (target ≥ 3×), " +
            $"{theirs.MedianCpu / ours.MedianCpu:N1}× in CPU time of the median runs (steadier when the machine is busy). " +
            $"KvStore.Cdc: **{changes / ours.Best:N0}** row changes/s best, {changes / ours.Median:N0} median (target ≥ 200,000). " +
            $"With every value read as ValueUtf8: {theirs.Best / utf8.Best:N1}× best vs best; as Value: {theirs.Best / value.Best:N1}×. Load average {LoadAverage()}.");
        Console.WriteLine();
    }

    /// <summary>Runs <paramref name="pass"/> <paramref name="runs"/> times on this thread; each returns what it counted.</summary>
    private static Timings Measure(int runs, Func<long> pass)
    {
        var results = new List<(double Wall, double Cpu)>();
        long count = 0;
        for (var i = 0; i < runs; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            count = pass();
            clock.Stop();
            results.Add((clock.Elapsed.TotalSeconds, (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds));
        }

        return Timings.From(results, count);
    }

    private static void Row(string label, Timings t, long bytes, long? changes) =>
        Console.WriteLine($"| {label} | {t.Best:N3} / {t.Median:N3} | {t.MedianCpu:N3} | {bytes / 1e6 / t.Best:N0} | " +
            (changes is { } c ? $"{c:N0} | {c / t.Best:N0} / {c / t.Median:N0} |" : "— | — |"));

    /// <summary>Wall-clock seconds of repeated runs (best = fastest), and the CPU seconds of the median run.</summary>
    private sealed record Timings(double Best, double Median, double MedianCpu, long Count)
    {
        public static Timings From(List<(double Wall, double Cpu)> runs, long count)
        {
            var sorted = runs.OrderBy(r => r.Wall).ToList();
            var median = sorted[sorted.Count / 2];
            return new Timings(sorted[0].Wall, median.Wall, median.Cpu, count);
        }
    }

    /// <summary>
    /// Commits batches of <see cref="BatchSize"/> puts, table by table, until the binlog holds
    /// <paramref name="targetBytes"/>: the first pass over the keys inserts, later passes update
    /// (UPDATE_ROWS with before and after images). Returns the batches and puts committed.
    /// </summary>
    private static async Task<(long Batches, long Puts)> FillAsync(MariaDbServer server, KvStoreClient kv, long targetBytes)
    {
        long next = -1;
        long batches = 0;
        using var done = new CancellationTokenSource();

        // Every 250 ms: has the binlog grown enough? (Reading file sizes costs nothing on the server.)
        var watcher = Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                if (Directory.GetFiles(server.BinlogDirectory, "mariadb-bin.0*").Sum(f => new FileInfo(f).Length) >= targetBytes)
                {
                    await done.CancelAsync();
                    break;
                }

                await Task.Delay(250);
            }
        });

        await Task.WhenAll(Enumerable.Range(0, FillConcurrency).Select(_ => Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                var i = Interlocked.Increment(ref next);
                var table = $"table-{i % Tables:D4}";
                var block = (i / Tables) % BlocksPerTable;
                var batch = new KvBatch(table);
                for (var k = 0; k < BatchSize; k++)
                {
                    batch.PutJson($"key-{(block * BatchSize) + k:D4}", Value(i, k));
                }

                await kv.CommitAsync(batch);
                Interlocked.Increment(ref batches);
            }
        })));
        await watcher;
        return (batches, batches * BatchSize);
    }

    /// <summary>A ~190-byte JSON document that differs per write.</summary>
    private static byte[] Value(long batch, int index) => Encoding.UTF8.GetBytes(
        $$"""{"id":{{batch}},"n":{{index}},"name":"user-{{batch % 9973}}","email":"user{{batch % 9973}}@example.com","tags":["alpha","beta","gamma"],"active":true,"score":{{(batch * 31 + index) % 1000}}.5,"note":"lorem ipsum dolor sit amet, consectetur adipiscing elit"}""");

    private static async Task<(TimeSpan Wall, TimeSpan Cpu)> RunMariaDbBinlogAsync(IReadOnlyList<string> files)
    {
        // The shell only sets up the redirection, then exec's mariadb-binlog, which is therefore our direct
        // child: its CPU time shows up in this process's cutime/cstime once it has been waited for.
        var command = "exec mariadb-binlog --no-defaults --base64-output=decode-rows -v " + string.Join(' ', files.Select(f => $"'{f}'")) + " > /dev/null";
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, RedirectStandardError = true };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(command);
        var childCpu = ChildrenCpu();
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(info) ?? throw new InvalidOperationException("mariadb-binlog did not start.");
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        clock.Stop();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"mariadb-binlog failed ({process.ExitCode}): {await stderr}");
        }

        return (clock.Elapsed, ChildrenCpu() - childCpu);
    }

    private static async Task LatencyAsync(MariaDbServer server, KvStoreClient kv, string cs, int rate, TimeSpan duration)
    {
        // Durable settings, as in production: the commit is acknowledged after the binlog is fsync'ed.
        await server.ExecuteAsync("SET GLOBAL sync_binlog = 1; SET GLOBAL innodb_flush_log_at_trx_commit = 1");

        // (table, revision) → when the change batch holding it reached the consumer (Stopwatch ticks).
        var arrived = new ConcurrentDictionary<(string Table, long Revision), long>();
        await using var stream = new KvChangeStream(new KvChangeStreamOptions { ConnectionString = cs, StreamName = "bench" });
        using var stop = new CancellationTokenSource();
        var consumer = Task.Run(async () =>
        {
            try
            {
                await foreach (var batch in stream.ReadAsync(stop.Token))
                {
                    var now = Stopwatch.GetTimestamp();
                    foreach (var change in batch.Changes)
                    {
                        arrived[(change.Table, change.Revision)] = now;
                    }

                    await stream.AcknowledgeAsync(batch);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
        });

        // The stream starts at the server's current position, which it learns some time after ReadAsync
        // starts: probe until a probe write comes through, so every measured write is after the start.
        var waited = Stopwatch.StartNew();
        while (true)
        {
            var probe = await kv.PutAsync("probe", "probe", new { ready = true });
            var sentAt = Stopwatch.StartNew();
            while (!arrived.ContainsKey(("probe", probe.Revision)) && sentAt.Elapsed < TimeSpan.FromMilliseconds(500))
            {
                await Task.Delay(10);
            }

            if (arrived.ContainsKey(("probe", probe.Revision)))
            {
                break;
            }

            if (waited.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException($"The change stream delivered no probe write within 60 s ({stream.Status}).");
            }
        }

        // Open-loop pacing: put number n is due at start + n / rate, whatever earlier puts are doing;
        // at most 128 are in flight. Each records when it was sent and when its commit was acknowledged.
        var sent = new ConcurrentDictionary<(string Table, long Revision), (long Sent, long Acked)>();
        using var inFlight = new SemaphoreSlim(128);
        var writes = new List<Task>();
        var total = (long)(rate * duration.TotalSeconds);
        var clock = Stopwatch.StartNew();
        long issued = 0;
        while (issued < total)
        {
            var due = Math.Min(total, (long)(clock.Elapsed.TotalSeconds * rate) + 1);
            for (; issued < due; issued++)
            {
                await inFlight.WaitAsync();
                var n = issued;
                writes.Add(Task.Run(async () =>
                {
                    try
                    {
                        var start = Stopwatch.GetTimestamp();
                        var entry = await kv.PutJsonAsync($"table-{n % Tables:D4}", $"key-{n / Tables}", Value(n, 0));
                        sent[(entry.Table, entry.Revision)] = (start, Stopwatch.GetTimestamp());
                    }
                    finally
                    {
                        inFlight.Release();
                    }
                }));
            }

            await Task.Delay(1);
        }

        await Task.WhenAll(writes);
        var writeSeconds = clock.Elapsed.TotalSeconds;

        // Let the tail arrive, then stop the consumer.
        waited.Restart();
        while (sent.Keys.Any(k => !arrived.ContainsKey(k)) && waited.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(50);
        }

        await stop.CancelAsync();
        await consumer;

        var fromAck = new List<double>(sent.Count);
        var fromSend = new List<double>(sent.Count);
        var missing = 0;
        foreach (var (key, (start, acked)) in sent)
        {
            if (!arrived.TryGetValue(key, out var at))
            {
                missing++;
                continue;
            }

            fromAck.Add(Stopwatch.GetElapsedTime(acked, at).TotalMilliseconds);
            fromSend.Add(Stopwatch.GetElapsedTime(start, at).TotalMilliseconds);
        }

        fromAck.Sort();
        fromSend.Sort();
        Console.WriteLine("## End-to-end latency (commit acknowledged → change at the consumer)");
        Console.WriteLine();
        Console.WriteLine($"Paced writer: {total:N0} single puts (PutJsonAsync, one transaction each) over {Tables:N0} tables, target {rate:N0}/s for {duration.TotalSeconds:N0} s; " +
            $"achieved **{sent.Count / writeSeconds:N0} puts/s**; innodb_flush_log_at_trx_commit=1, sync_binlog=1; one KvChangeStream consumer acknowledging every batch. " +
            $"{missing} change(s) never arrived. Load average {LoadAverage()}.");
        Console.WriteLine();
        Console.WriteLine("| measured from | p50 ms | p90 ms | p99 ms | max ms | min ms |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        Console.WriteLine($"| put returned (commit acknowledged) | {Percentile(fromAck, 50):N2} | {Percentile(fromAck, 90):N2} | {Percentile(fromAck, 99):N2} | {fromAck[^1]:N2} | {fromAck[0]:N2} |");
        Console.WriteLine($"| put called | {Percentile(fromSend, 50):N2} | {Percentile(fromSend, 90):N2} | {Percentile(fromSend, 99):N2} | {fromSend[^1]:N2} | {fromSend[0]:N2} |");
        Console.WriteLine();
    }

    private static double Percentile(List<double> sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Count) - 1, 0, sorted.Count - 1)];

    /// <summary>CPU time of waited-for children (cutime + cstime of /proc/self/stat, in clock ticks of 1/100 s).</summary>
    private static TimeSpan ChildrenCpu()
    {
        var stat = File.ReadAllText("/proc/self/stat");

        // Fields after the parenthesised command name (which may contain spaces): state is field 3, cutime 16, cstime 17.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[16 - 3], CultureInfo.InvariantCulture) + long.Parse(fields[17 - 3], CultureInfo.InvariantCulture);
        return TimeSpan.FromSeconds(ticks / 100.0);
    }

    private static string LoadAverage() => string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
}
