using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace KvStore.TestInfrastructure;

/// <summary>Helpers for the servers the tests start themselves.</summary>
public static class LocalServer
{
    /// <summary>Finds <paramref name="name"/> on PATH, /usr/sbin or /usr/bin; null when it is not installed.</summary>
    public static string? FindExecutable(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Append("/usr/sbin").Append("/usr/bin"))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>A loopback TCP port that was free a moment ago.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Kills <paramref name="process"/> (if it still runs) and deletes its throwaway <paramref name="root"/>; best effort.</summary>
    public static void KillAndDelete(Process? process, string root)
    {
        try
        {
            if (process is { HasExited: false })
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        try
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
        catch (IOException)
        {
        }
    }
}
