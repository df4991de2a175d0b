using System.Globalization;
using KvStore.Bench;
using KvStore.Bench.Realtime;

// dotnet run -c Release --project bench/KvStore.Bench -- store [--seconds N] [--rounds N] [--only put|get]
// dotnet run -c Release --project bench/KvStore.Bench -- cdc [--mb N] [--rate N] [--seconds N] [--only decode|latency]
// dotnet run -c Release --project bench/KvStore.Bench -- realtime [--scenario idle,hot,claps,db,fanout,storm,backplane] [--connections N] [--seconds N] [--server-gc]
// Each benchmark starts its own MariaDB and measures KvStore against a baseline in the same run.
var which = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal) && !int.TryParse(a, out _)) ?? "store";
switch (which)
{
    case "store":
        var store = args.SkipWhile(a => a != "--only").Skip(1).FirstOrDefault();
        if (store is not (null or "put" or "get"))
        {
            Console.Error.WriteLine($"--only takes 'put' or 'get', not '{store}'");
            return 2;
        }

        await StoreBenchmark.RunAsync(TimeSpan.FromSeconds(Option("--seconds", 4)), Option("--rounds", 3), store);
        break;
    case "cdc":
        var only = args.SkipWhile(a => a != "--only").Skip(1).FirstOrDefault();
        if (only is not (null or "decode" or "latency"))
        {
            Console.Error.WriteLine($"--only takes 'decode' or 'latency', not '{only}'");
            return 2;
        }

        await CdcBenchmark.RunAsync(
            targetMegabytes: Option("--mb", 100),
            rate: Option("--rate", 2000),
            duration: TimeSpan.FromSeconds(Option("--seconds", 10)),
            decode: only is null or "decode",
            latency: only is null or "latency");
        break;
    case KvStore.Bench.Realtime.WriterProcess.Verb:
        return await KvStore.Bench.Realtime.WriterProcess.MainAsync(args);
    case "realtime":
        var scenarios = (args.SkipWhile(a => a != "--scenario").Skip(1).FirstOrDefault() ?? string.Join(',', RealtimeBenchmark.AllScenarios))
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (scenarios.FirstOrDefault(s => !RealtimeBenchmark.AllScenarios.Contains(s)) is { } unknown)
        {
            Console.Error.WriteLine($"--scenario takes {string.Join(", ", RealtimeBenchmark.AllScenarios)} (comma-separated), not '{unknown}'");
            return 2;
        }

        return await RealtimeBenchmark.RunAsync(
            scenarios,
            args.Contains("--connections") ? Option("--connections", 10_000) : null,
            args.Contains("--seconds") ? Option("--seconds", 10) : null,
            args.Contains("--server-gc"));
    default:
        Console.Error.WriteLine($"unknown benchmark '{which}'; known: store, cdc, realtime");
        return 2;
}

return 0;

int Option(string name, int fallback) =>
    args.SkipWhile(a => a != name).Skip(1).Select(a => int.Parse(a, CultureInfo.InvariantCulture)).DefaultIfEmpty(fallback).First();
