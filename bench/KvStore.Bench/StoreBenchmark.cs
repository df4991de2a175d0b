using System.Diagnostics;
using System.Text;
using KvStore.TestInfrastructure;
using MySqlConnector;

namespace KvStore.Bench;

/// <summary>
/// Put and get throughput through KvStore against hand-written MySqlConnector SQL doing the same
/// thing (a plain autocommit upsert / a primary-key select) on the same server, at the same
/// concurrency, over 1,000 tables. Prints ops/s and the ratio KvStore / raw.
/// </summary>
/// <remarks>
/// The server is shared and fsync-bound, so one cell says little: every cell runs <c>rounds</c>
/// times with raw and KvStore alternating (raw first in even rounds, KvStore first in odd ones), and
/// the table shows the medians of ops/s and of the per-round ratios, with the ratios' range.
/// </remarks>
internal static class StoreBenchmark
{
    private const int Tables = 1000;
    private const int KeysPerTable = 20;
    private static readonly byte[] Value = Encoding.UTF8.GetBytes("""{"title":"hello","count":42,"tags":["a","b","c"],"body":"lorem ipsum dolor sit amet"}""");

    public static async Task RunAsync(TimeSpan duration, int rounds, string? only)
    {
        // Durable settings, as in production: fsync the redo log and the binlog on every commit.
        await using var server = await MariaDbServer.StartAsync("bench", c =>
        {
            c.AppendLine("innodb_flush_log_at_trx_commit=1");
            c.AppendLine("sync_binlog=1");
            c.AppendLine("innodb_buffer_pool_size=512M");
        });
        await server.ExecuteAsync("CREATE DATABASE bench");
        var cs = server.ConnectionString("bench");
        await KvSchema.MigrateAsync(cs);
        await server.ExecuteAsync(
            "CREATE TABLE raw_entries (tbl VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, k VARBINARY(255) NOT NULL, " +
            "v LONGBLOB NULL, updated_at DATETIME(6) NOT NULL, PRIMARY KEY (tbl, k)) ENGINE=InnoDB", "bench");
        await using var kv = new KvStoreClient(new KvStoreOptions { ConnectionString = cs });
        var raw = new MySqlDataSource(cs);
        // KvStore's gets use a pool that skips MySqlConnector's connection reset (they leave no session
        // state); a second baseline does the same, so the table shows what the pool is worth and what the SQL costs.
        var rawNoReset = new MySqlDataSource(new MySqlConnectionStringBuilder(cs) { ConnectionReset = false }.ConnectionString);

        Console.WriteLine($"# KvStore vs raw MySqlConnector SQL — {Tables} tables, {KeysPerTable} keys each, {duration.TotalSeconds:0} s per cell, {rounds} interleaved rounds");
        Console.WriteLine($"# server: MariaDB {await server.ScalarAsync("SELECT VERSION()")}, innodb_flush_log_at_trx_commit=1, sync_binlog=1; {Environment.ProcessorCount} cores");
        Console.WriteLine();
        Console.WriteLine("| operation | concurrency | raw SQL ops/s | KvStore ops/s | ratio (median) | ratio range |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");

        // Seed both so that gets hit existing keys.
        await RunAsync(16, TimeSpan.Zero, Tables * KeysPerTable, i => RawPutAsync(raw, i));
        await RunAsync(16, TimeSpan.Zero, Tables * KeysPerTable, i => kv.PutJsonAsync(Table(i), Key(i), Value));

        foreach (var concurrency in new[] { 1, 16, 64 })
        {
            if (only is null or "put")
            {
                await CompareAsync("put", concurrency, duration, rounds, i => RawPutAsync(raw, i), i => kv.PutJsonAsync(Table(i), Key(i), Value));
            }

            if (only is null or "get")
            {
                await CompareAsync("get", concurrency, duration, rounds, i => RawGetAsync(raw, i), i => kv.GetAsync(Table(i), Key(i)));
                await CompareAsync("get (raw without reset)", concurrency, duration, rounds, i => RawGetAsync(rawNoReset, i), i => kv.GetAsync(Table(i), Key(i)));
            }
        }

        await raw.DisposeAsync();
        await rawNoReset.DisposeAsync();
    }

    private static async Task CompareAsync(string op, int concurrency, TimeSpan duration, int rounds, Func<long, Task> rawOp, Func<long, Task> kvOp)
    {
        var raws = new List<double>();
        var kvs = new List<double>();
        var ratios = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            double r, k;
            if (round % 2 == 0)
            {
                r = await RunAsync(concurrency, duration, null, rawOp);
                k = await RunAsync(concurrency, duration, null, kvOp);
            }
            else
            {
                k = await RunAsync(concurrency, duration, null, kvOp);
                r = await RunAsync(concurrency, duration, null, rawOp);
            }

            raws.Add(r);
            kvs.Add(k);
            ratios.Add(k / r);
        }

        Console.WriteLine($"| {op} | {concurrency} | {Median(raws):N0} | {Median(kvs):N0} | {Median(ratios):0.00} | {ratios.Min():0.00}–{ratios.Max():0.00} |");
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        var mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    private static string Table(long i) => "table-" + (i % Tables);

    private static string Key(long i) => "key-" + ((i / Tables) % KeysPerTable);

    private static async Task RawPutAsync(MySqlDataSource raw, long i)
    {
        await using var connection = await raw.OpenConnectionAsync();
        await using var command = new MySqlCommand(
            "INSERT INTO raw_entries (tbl, k, v, updated_at) VALUES (@t, @k, @v, UTC_TIMESTAMP(6)) " +
            "ON DUPLICATE KEY UPDATE v = VALUES(v), updated_at = VALUES(updated_at)", connection);
        command.Parameters.AddWithValue("@t", Table(i));
        command.Parameters.AddWithValue("@k", Encoding.UTF8.GetBytes(Key(i)));
        command.Parameters.AddWithValue("@v", Value);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task RawGetAsync(MySqlDataSource raw, long i)
    {
        await using var connection = await raw.OpenConnectionAsync();
        await using var command = new MySqlCommand("SELECT v, updated_at FROM raw_entries WHERE tbl = @t AND k = @k", connection);
        command.Parameters.AddWithValue("@t", Table(i));
        command.Parameters.AddWithValue("@k", Encoding.UTF8.GetBytes(Key(i)));
        await using var reader = await command.ExecuteReaderAsync();
        if (await reader.ReadAsync())
        {
            _ = (byte[])reader.GetValue(0);
            _ = reader.GetDateTime(1);
        }
    }

    /// <summary>Runs <paramref name="concurrency"/> workers for a duration (or a fixed count of ops) and returns ops/s.</summary>
    private static async Task<double> RunAsync(int concurrency, TimeSpan duration, long? count, Func<long, Task> op)
    {
        long next = Random.Shared.Next(Tables * KeysPerTable);
        long done = 0;
        using var cts = new CancellationTokenSource();
        if (count is null)
        {
            cts.CancelAfter(duration);
        }

        var started = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            while (!cts.IsCancellationRequested)
            {
                var i = Interlocked.Increment(ref next);
                if (count is { } c && Interlocked.Read(ref done) >= c)
                {
                    break;
                }

                await op(i);
                Interlocked.Increment(ref done);
            }
        })));
        return done / started.Elapsed.TotalSeconds;
    }
}
