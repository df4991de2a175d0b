using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace KvStore.TestInfrastructure;

/// <summary>
/// A real <c>redis-server</c> on a free loopback port, working in a throwaway directory, without
/// persistence (<c>--save '' --appendonly no</c>). Ready once it logs that it accepts connections and
/// answers a PING. Missing binary is an error, not a skip: CI installs it (<c>scripts/prerequisites.sh redis</c>).
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private readonly string _root;
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private RedisServer(string root, int port, Process process)
    {
        _root = root;
        Port = port;
        _process = process;
    }

    /// <summary>Loopback TCP port.</summary>
    public int Port { get; }

    /// <summary>StackExchange.Redis configuration string for this server.</summary>
    public string Configuration => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Port}");

    /// <summary>Starts a server and waits until it answers.</summary>
    public static async Task<RedisServer> StartAsync(string label)
    {
        var executable = LocalServer.FindExecutable("redis-server")
            ?? throw new InvalidOperationException("redis-server not found: install Debian's redis-server (bash scripts/prerequisites.sh redis).");
        var root = Path.Combine(Path.GetTempPath(), $"kvstore-redis-{label}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(root);
        var port = LocalServer.FreePort();
        var info = new ProcessStartInfo(executable)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = root,
        };
        foreach (var argument in new[]
        {
            "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", root,
            "--save", string.Empty, "--appendonly", "no", "--daemonize", "no", "--loglevel", "notice",
        })
        {
            info.ArgumentList.Add(argument);
        }

        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var server = new RedisServer(root, port, process);
        process.OutputDataReceived += (_, e) => server.OnOutput(e.Data, ready);
        process.ErrorDataReceived += (_, e) => server.OnOutput(e.Data, ready);
        process.Exited += (_, _) => ready.TrySetException(new InvalidOperationException($"redis-server exited with {process.ExitCode}: {server.Output()}"));
        if (!process.Start())
        {
            throw new InvalidOperationException("redis-server did not start.");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => LocalServer.KillAndDelete(server._process, server._root);
        try
        {
            await ready.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await server.PingAsync();
        }
        catch (Exception ex) when (ex is TimeoutException or IOException or SocketException)
        {
            LocalServer.KillAndDelete(server._process, server._root);
            throw new InvalidOperationException($"redis-server on port {port} did not become ready: {server.Output()}", ex);
        }

        return server;
    }

    /// <summary>Sends PING over RESP and expects PONG.</summary>
    public async Task PingAsync()
    {
        using var client = new TcpClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await client.ConnectAsync(IPAddress.Loopback, Port, timeout.Token);
        var stream = client.GetStream();
        await stream.WriteAsync("PING\r\n"u8.ToArray(), timeout.Token);
        var buffer = new byte[64];
        var answer = new StringBuilder();
        while (!answer.ToString().Contains("\r\n", StringComparison.Ordinal))
        {
            var read = await stream.ReadAsync(buffer, timeout.Token);
            if (read == 0)
            {
                break;
            }

            answer.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }

        if (answer.ToString() != "+PONG\r\n")
        {
            throw new IOException($"redis-server answered PING with '{answer}'.");
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        LocalServer.KillAndDelete(_process, _root);
        _process.Dispose();
        return ValueTask.CompletedTask;
    }

    private void OnOutput(string? line, TaskCompletionSource ready)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }

        if (line.Contains("Ready to accept connections", StringComparison.Ordinal))
        {
            ready.TrySetResult();
        }
    }

    private string Output()
    {
        lock (_output)
        {
            return _output.ToString();
        }
    }
}
