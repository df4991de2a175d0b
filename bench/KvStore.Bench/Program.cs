using KvStore.Bench;

// dotnet run -c Release --project bench/KvStore.Bench -- [store] [--seconds N]
// Each benchmark starts its own MariaDB and measures KvStore against a baseline in the same run.
var seconds = args.SkipWhile(a => a != "--seconds").Skip(1).Select(int.Parse).DefaultIfEmpty(4).First();
var which = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal) && !int.TryParse(a, out _)) ?? "store";
switch (which)
{
    case "store":
        await StoreBenchmark.RunAsync(TimeSpan.FromSeconds(seconds));
        break;
    default:
        Console.Error.WriteLine($"unknown benchmark '{which}'; known: store");
        return 2;
}

return 0;
