namespace KvStore.Cdc.Tests;

/// <summary>Finds the binlog fixtures (<c>tests/fixtures/binlog</c> in the repository).</summary>
internal static class Fixtures
{
    private static readonly Lazy<string> Root = new(Locate);

    /// <summary>Absolute path of the <c>fixtures/binlog</c> folder.</summary>
    public static string BinlogRoot => Root.Value;

    /// <summary>Absolute path of a file below <c>fixtures/binlog</c>.</summary>
    public static string Path(string relative) => System.IO.Path.Combine(BinlogRoot, relative);

    private static string Locate()
    {
        var fromEnv = Environment.GetEnvironmentVariable("KVSTORE_FIXTURES");
        if (!string.IsNullOrEmpty(fromEnv))
        {
            return fromEnv;
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = System.IO.Path.Combine(dir.FullName, "tests", "fixtures", "binlog");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException("tests/fixtures/binlog not found above the test binaries; set KVSTORE_FIXTURES.");
    }
}
