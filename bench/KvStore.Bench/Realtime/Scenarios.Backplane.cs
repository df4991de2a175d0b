using System.Globalization;
using KvStore.TestInfrastructure;

namespace KvStore.Bench.Realtime;

internal sealed partial class RealtimeBenchmark
{
    /// <summary>
    /// The claps and realtime-database scenarios, scaled down (5,000 readers at 500 clicks/s; 500 tables
    /// × 10 subscribers at 500 writes/s), on one node and then through a private redis-server with two
    /// hub nodes (RunPublisher=false, clients spread over both) and one publisher process.
    /// </summary>
    private async Task BackplaneAsync()
    {
        var readers = Math.Min(_maxConnections, 5_000);
        var tables = Math.Max(1, readers / 10);
        const int clickers = 100;
        const int Rate = 500;
        var duration = Seconds(10);

        ClapsResult oneClaps;
        DbResult oneDb;
        {
            var cs = await CreateDatabaseAsync("rt_bp_one");
            await using var node = await StartKvHostAsync(cs, "kvstore");
            oneClaps = await RunClapsAsync([node], readers, clickers, Rate, duration, "article:bp");
            oneDb = (await RunDbAsync([node.BaseUrl], node, tables, 10, [Rate], duration))[0];
        }

        ClapsResult redisClaps;
        DbResult redisDb;
        await using (var redis = await RedisServer.StartAsync("rt"))
        {
            var cs = await CreateDatabaseAsync("rt_bp_redis");
            await using var publisher = await StartKvHostAsync(cs, "publisher", mode: "publisher", redis: redis.Configuration);
            await using var a = await StartKvHostAsync(cs, "hub A", mode: "hub", redis: redis.Configuration);
            await using var b = await StartKvHostAsync(cs, "hub B", mode: "hub", redis: redis.Configuration);
            redisClaps = await RunClapsAsync([a, b], readers, clickers, Rate, duration, "article:bp");
            redisDb = (await RunDbAsync([a.BaseUrl, b.BaseUrl], a, tables, 10, [Rate], duration))[0];
            Console.WriteLine($"Backplane: slow-consumer warnings logged: hub A {a.SlowConsumerLogs}, hub B {b.SlowConsumerLogs}.");
            Console.WriteLine();
        }

        Console.WriteLine($"One node vs two hub nodes + a publisher process through redis-server (clients alternate between the hub nodes; {duration.TotalSeconds:0} s windows).");
        Console.WriteLine();
        Console.WriteLine("### claps");
        Console.WriteLine();
        PrintClapsHeader();
        PrintClapsRow("one node", oneClaps);
        PrintClapsRow("backplane (2 hubs + publisher)", redisClaps);
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Overhead backplane / one node: Increment p99 {Ratio(redisClaps.Clicks.P99, oneClaps.Clicks.P99)}, click→reader p50 {Ratio(redisClaps.ClickToReader.Percentile(50), oneClaps.ClickToReader.Percentile(50))}, p99 {Ratio(redisClaps.ClickToReader.Percentile(99), oneClaps.ClickToReader.Percentile(99))}."));
        Console.WriteLine();
        Console.WriteLine("### realtime database");
        Console.WriteLine();
        PrintDbHeader();
        PrintDbRow("one node", oneDb);
        PrintDbRow("backplane (2 hubs + publisher)", redisDb);
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Overhead backplane / one node: write-return→subscriber p50 {Ratio(redisDb.Delivery.Percentile(50), oneDb.Delivery.Percentile(50))}, p99 {Ratio(redisDb.Delivery.Percentile(99), oneDb.Delivery.Percentile(99))}; messages/s {Ratio(redisDb.MessagesPerSecond, oneDb.MessagesPerSecond)}; put p99 {Ratio(redisDb.Writes.Latency.Percentile(99), oneDb.Writes.Latency.Percentile(99))}."));
        PrintDbNotes();
    }
}
