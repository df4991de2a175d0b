using System.Diagnostics;
using System.Globalization;
using System.Text;
using MySqlConnector;

namespace KvStore.TestInfrastructure;

/// <summary>
/// A real <c>mariadbd</c> in a throwaway data directory on a free loopback port, with the binlog
/// configured the way KvStore.Cdc needs it (ROW, FULL image, FULL metadata, CRC32, GTID strict).
/// One instance is shared per test assembly (<see cref="Shared"/>); destructive tests (restart,
/// purge) start their own with <see cref="StartAsync"/>.
/// </summary>
public sealed class MariaDbServer : IAsyncDisposable
{
    /// <summary>User with all privileges created for tests.</summary>
    public const string AdminUser = "kvtest";

    /// <summary>Password of <see cref="AdminUser"/>.</summary>
    public const string AdminPassword = "kvtest-pass";

    private static readonly Lazy<Task<MariaDbServer>> SharedServer = new(() => StartAsync("shared"));
    private readonly string _root;
    private readonly string _configPath;
    private Process? _process;

    private MariaDbServer(string root, int port, int serverId)
    {
        _root = root;
        Port = port;
        ServerId = serverId;
        _configPath = Path.Combine(root, "my.cnf");
    }

    /// <summary>The server shared by every test class of this test assembly, started on first use.</summary>
    public static Task<MariaDbServer> Shared => SharedServer.Value;

    /// <summary>Loopback TCP port.</summary>
    public int Port { get; }

    /// <summary>The server's <c>server_id</c>.</summary>
    public int ServerId { get; }

    /// <summary>Directory holding the datadir, config, socket and logs.</summary>
    public string RootDirectory => _root;

    /// <summary>Directory holding the binlog files.</summary>
    public string BinlogDirectory => Path.Combine(_root, "binlog");

    /// <summary>Connection string for <see cref="AdminUser"/> without a default database.</summary>
    public string AdminConnectionString => ConnectionString(database: null);

    /// <summary>Connection string for <see cref="AdminUser"/> on <paramref name="database"/>.</summary>
    public string ConnectionString(string? database)
    {
        var builder = new MySqlConnectionStringBuilder
        {
            Server = "127.0.0.1",
            Port = (uint)Port,
            UserID = AdminUser,
            Password = AdminPassword,
            SslMode = MySqlSslMode.None,
            AllowPublicKeyRetrieval = false,
            Pooling = true,
            MaximumPoolSize = 200,
            DefaultCommandTimeout = 60,
        };
        if (database is not null)
        {
            builder.Database = database;
        }

        return builder.ConnectionString;
    }

    /// <summary>Initialises a fresh data directory and starts a server in it.</summary>
    public static async Task<MariaDbServer> StartAsync(string label, Action<StringBuilder>? extraConfig = null)
    {
        var mariadbd = LocalServer.FindExecutable("mariadbd")
            ?? throw new InvalidOperationException("mariadbd not found: install Debian's mariadb-server (apt-get install mariadb-server).");
        var installDb = LocalServer.FindExecutable("mariadb-install-db")
            ?? throw new InvalidOperationException("mariadb-install-db not found: install Debian's mariadb-server.");

        var root = Path.Combine(Path.GetTempPath(), $"kvstore-mariadb-{label}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(Path.Combine(root, "data"));
        Directory.CreateDirectory(Path.Combine(root, "binlog"));
        Directory.CreateDirectory(Path.Combine(root, "tmp"));
        var server = new MariaDbServer(root, LocalServer.FreePort(), Random.Shared.Next(100, 10_000));
        await File.WriteAllTextAsync(server._configPath, server.BuildConfig(extraConfig));

        await RunToEndAsync(installDb, $"--defaults-file={server._configPath} --auth-root-authentication-method=normal --skip-test-db {UserArgument()}", TimeSpan.FromMinutes(2));
        await server.StartProcessAsync();
        await using (var connection = new MySqlConnection(server.RootSocketConnectionString()))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText =
                $"CREATE USER '{AdminUser}'@'127.0.0.1' IDENTIFIED BY '{AdminPassword}';" +
                $"GRANT ALL PRIVILEGES ON *.* TO '{AdminUser}'@'127.0.0.1' WITH GRANT OPTION;";
            await command.ExecuteNonQueryAsync();
        }

        AppDomain.CurrentDomain.ProcessExit += (_, _) => LocalServer.KillAndDelete(server._process, server._root);
        return server;
    }

    /// <summary>Stops the server gracefully (SHUTDOWN), keeping its data.</summary>
    public async Task StopAsync()
    {
        if (_process is null)
        {
            return;
        }

        try
        {
            await using var connection = new MySqlConnection(RootSocketConnectionString());
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "SHUTDOWN";
            await command.ExecuteNonQueryAsync();
        }
        catch (MySqlException)
        {
            _process.Kill(entireProcessTree: true);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await _process.WaitForExitAsync(timeout.Token);
        _process.Dispose();
        _process = null;
        MySqlConnection.ClearAllPools();
    }

    /// <summary>Kills the server process without a clean shutdown (a crash), keeping its data.</summary>
    public async Task KillAsync()
    {
        if (_process is null)
        {
            return;
        }

        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
        _process = null;
        MySqlConnection.ClearAllPools();
    }

    /// <summary>Starts the server again on the same data directory and port.</summary>
    public Task RestartAsync() => StartProcessAsync();

    /// <summary>
    /// Feeds <paramref name="script"/> to the <c>mariadb</c> command-line client as <paramref name="user"/>
    /// (the admin user by default), as a DBA would (<c>mariadb db &lt; file.sql</c>); throws with the client's
    /// output when it fails.
    /// </summary>
    public async Task RunClientScriptAsync(string script, string database, string user = AdminUser, string password = AdminPassword)
    {
        var client = LocalServer.FindExecutable("mariadb") ?? LocalServer.FindExecutable("mysql")
            ?? throw new InvalidOperationException("The mariadb client is not installed (apt-get install mariadb-client).");
        var info = new ProcessStartInfo(client)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in new[] { "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P", Port.ToString(CultureInfo.InvariantCulture), "-u", user, "--password=" + password, "--skip-ssl", database })
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{client} did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(script);
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await process.WaitForExitAsync(cts.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{client} failed ({process.ExitCode}): {await stdout}{await stderr}");
        }
    }

    /// <summary>Runs one SQL statement batch as the admin user.</summary>
    public async Task ExecuteAsync(string sql, string? database = null)
    {
        await using var connection = new MySqlConnection(ConnectionString(database));
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Runs a scalar query as the admin user.</summary>
    public async Task<object?> ScalarAsync(string sql, string? database = null)
    {
        await using var connection = new MySqlConnection(ConnectionString(database));
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        var value = await command.ExecuteScalarAsync();
        return value is DBNull ? null : value;
    }

    /// <summary>Ids of the sessions of <paramref name="database"/> running a statement that matches the LIKE pattern.</summary>
    public async Task<IReadOnlyList<long>> SessionsRunningAsync(string database, string likePattern)
    {
        await using var connection = new MySqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var find = new MySqlCommand("SELECT id FROM information_schema.processlist WHERE db = @db AND info LIKE @pattern", connection);
        find.Parameters.AddWithValue("@db", database);
        find.Parameters.AddWithValue("@pattern", likePattern);
        return await ReadIdsAsync(find);
    }

    /// <summary>
    /// Purges every binlog file before <paramref name="file"/> (null: the current one). PURGE skips files
    /// a dump thread still reads, and the server notices a closed replica only on its next write, so
    /// lingering dump threads are killed first, until the purge has taken effect.
    /// </summary>
    public async Task PurgeBinaryLogsToAsync(string? file = null)
    {
        file ??= (string)(await ScalarAsync("SHOW MASTER STATUS"))!;
        await Eventually.UntilAsync(
            async () =>
            {
                await using var connection = new MySqlConnection(AdminConnectionString);
                await connection.OpenAsync();
                await using var dumps = new MySqlCommand("SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'", connection);
                foreach (var id in await ReadIdsAsync(dumps))
                {
                    try
                    {
                        await using var kill = new MySqlCommand($"KILL CONNECTION {id}", connection);
                        await kill.ExecuteNonQueryAsync();
                    }
                    catch (MySqlException)
                    {
                        // Already gone.
                    }
                }

                await using (var purge = new MySqlCommand($"PURGE BINARY LOGS TO '{file}'", connection))
                {
                    await purge.ExecuteNonQueryAsync();
                }

                await using var first = new MySqlCommand("SHOW BINARY LOGS", connection);
                return (string?)await first.ExecuteScalarAsync() == file;
            },
            () => $"the binlog files before {file} could not be purged");
    }

    private static async Task<List<long>> ReadIdsAsync(MySqlCommand command)
    {
        var ids = new List<long>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            ids.Add(Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture));
        }

        return ids;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        LocalServer.KillAndDelete(_process, _root);
    }

    private static string UserArgument() => Environment.UserName == "root" ? "--user=root" : string.Empty;

    private string RootSocketConnectionString() => new MySqlConnectionStringBuilder
    {
        Server = Path.Combine(_root, "mysqld.sock"),
        ConnectionProtocol = MySqlConnectionProtocol.UnixSocket,
        UserID = "root",
        Pooling = false,
    }.ConnectionString;

    private string BuildConfig(Action<StringBuilder>? extra)
    {
        var config = new StringBuilder();
        config.AppendLine("[mariadbd]");
        config.AppendLine(CultureInfo.InvariantCulture, $"datadir={Path.Combine(_root, "data")}");
        // Its own temporary files too: not in the machine's /tmp, where something else may remove them
        // (seen: "Error on delete of '/tmp/#sql-temptable-…'" failing a query), and gone with the server.
        config.AppendLine(CultureInfo.InvariantCulture, $"tmpdir={Path.Combine(_root, "tmp")}");
        config.AppendLine(CultureInfo.InvariantCulture, $"port={Port}");
        config.AppendLine("bind-address=127.0.0.1");
        config.AppendLine(CultureInfo.InvariantCulture, $"socket={Path.Combine(_root, "mysqld.sock")}");
        config.AppendLine(CultureInfo.InvariantCulture, $"pid-file={Path.Combine(_root, "mysqld.pid")}");
        config.AppendLine(CultureInfo.InvariantCulture, $"log-error={Path.Combine(_root, "error.log")}");
        config.AppendLine(CultureInfo.InvariantCulture, $"server_id={ServerId}");
        config.AppendLine(CultureInfo.InvariantCulture, $"log_bin={Path.Combine(_root, "binlog", "mariadb-bin")}");
        config.AppendLine("binlog_format=ROW");
        config.AppendLine("binlog_row_image=FULL");
        config.AppendLine("binlog_row_metadata=FULL");
        config.AppendLine("binlog_checksum=CRC32");
        config.AppendLine("gtid_strict_mode=ON");
        config.AppendLine("max_allowed_packet=64M");
        config.AppendLine("skip-name-resolve");
        config.AppendLine("character_set_server=utf8mb4");
        config.AppendLine("collation_server=utf8mb4_general_ci");
        config.AppendLine("default_time_zone=+00:00");
        config.AppendLine("max_connections=500");
        config.AppendLine("innodb_buffer_pool_size=128M");
        // Tests value speed over crash safety of the throwaway server; benchmarks use durable settings.
        config.AppendLine("innodb_flush_log_at_trx_commit=2");
        config.AppendLine("sync_binlog=0");
        config.AppendLine("performance_schema=OFF");
        extra?.Invoke(config);
        return config.ToString();
    }

    private async Task StartProcessAsync()
    {
        var mariadbd = LocalServer.FindExecutable("mariadbd")!;
        var info = new ProcessStartInfo(mariadbd, $"--defaults-file={_configPath} {UserArgument()}")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        _process = Process.Start(info) ?? throw new InvalidOperationException("mariadbd did not start.");
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        // Readiness is the server accepting a connection; poll it with a deadline.
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"mariadbd exited with {_process.ExitCode}: {ReadErrorLog()}");
            }

            try
            {
                await using var connection = new MySqlConnection(RootSocketConnectionString());
                await connection.OpenAsync();
                return;
            }
            catch (MySqlException) when (deadline.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(50);
            }
        }
    }

    private string ReadErrorLog()
    {
        var path = Path.Combine(_root, "error.log");
        return File.Exists(path) ? File.ReadAllText(path) : "(no error log)";
    }

    private static async Task RunToEndAsync(string file, string arguments, TimeSpan timeout)
    {
        var info = new ProcessStartInfo(file, arguments)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{file} did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        await process.WaitForExitAsync(cts.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {arguments} failed ({process.ExitCode}): {await stdout}{await stderr}");
        }
    }
}
