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
internal static class StoreBenchmark
{
    private const int Tables = 1000;
    private const int KeysPerTable = 20;
    private static readonly byte[] Value = Encoding.UTF8.GetBytes("""{"title":"hello","count":42,"tags":["a","b","c"],"body":"lorem ipsum dolor sit amet"}""");

    public static async Task RunAsync(TimeSpan duration)
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

        Console.WriteLine($"# KvStore vs raw MySqlConnector SQL — {Tables} tables, {KeysPerTable} keys each, {duration.TotalSeconds:0} s per cell");
        Console.WriteLine($"# server: MariaDB {await server.ScalarAsync("SELECT VERSION()")}, innodb_flush_log_at_trx_commit=1, sync_binlog=1; {Environment.ProcessorCount} cores");
        Console.WriteLine();
        Console.WriteLine("| operation | concurrency | raw SQL ops/s | KvStore ops/s | ratio |");
        Console.WriteLine("|---|---:|---:|---:|---:|");

        // Seed both so that gets hit existing keys.
        await RunAsync(16, TimeSpan.Zero, Tables * KeysPerTable, i => RawPutAsync(raw, i));
        await RunAsync(16, TimeSpan.Zero, Tables * KeysPerTable, i => kv.PutJsonAsync(Table(i), Key(i), Value));

        foreach (var concurrency in new[] { 1, 16, 64 })
        {
            var rawPut = await RunAsync(concurrency, duration, null, i => RawPutAsync(raw, i));
            var kvPut = await RunAsync(concurrency, duration, null, i => kv.PutJsonAsync(Table(i), Key(i), Value));
            Print("put", concurrency, rawPut, kvPut);
            var rawGet = await RunAsync(concurrency, duration, null, i => RawGetAsync(raw, i));
            var kvGet = await RunAsync(concurrency, duration, null, i => kv.GetAsync(Table(i), Key(i)));
            Print("get", concurrency, rawGet, kvGet);
        }

        await raw.DisposeAsync();
    }

    private static string Table(long i) => "table-" + (i % Tables);

    private static string Key(long i) => "key-" + ((i / Tables) % KeysPerTable);

    private static void Print(string op, int concurrency, double raw, double kv) =>
        Console.WriteLine($"| {op} | {concurrency} | {raw:N0} | {kv:N0} | {kv / raw:0.00} |");

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
