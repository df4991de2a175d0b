using System.Globalization;
using System.Reflection;
using Dapper;
using KvStore.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MySqlConnector;

namespace KvStore;

/// <summary>
/// The database schema: versioned migrations (embedded plain SQL files, also shipped as
/// <c>schema.sql</c>), the version check, and a check of the server settings KvStore.Cdc needs.
/// </summary>
public static class KvSchema
{
    /// <summary>The schema version this library requires.</summary>
    public const int CurrentVersion = 2;

    private const string MigrationLock = "kvstore.migrate";
    private const string ResourcePrefix = "KvStore.Migrations.V";

    /// <summary>The embedded migrations, in version order.</summary>
    public static IReadOnlyList<KvMigration> Migrations { get; } = LoadMigrations();

    /// <summary>
    /// Applies every migration newer than the database's version, in order, holding a
    /// <c>GET_LOCK</c> so that concurrent migrators wait for each other. Returns the new version.
    /// </summary>
    public static async Task<int> MigrateAsync(string connectionString, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        logger ??= NullLogger.Instance;
        // Trigger bodies use session variables (@kv_put_*), which MySqlConnector would otherwise read as parameters.
        var connection = new MySqlConnection(new MySqlConnectionStringBuilder(connectionString) { AllowUserVariables = true }.ConnectionString);
        await using var connectionScope = connection.ConfigureAwait(false);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        var locked = await connection.ExecuteScalarAsync<long?>(
            new CommandDefinition("SELECT GET_LOCK(@name, 120)", new { name = MigrationLock }, cancellationToken: cancellationToken)).ConfigureAwait(false);
        if (locked != 1)
        {
            throw new KvStoreException(KvErrorCodes.Unavailable, "Another migrator has held the migration lock for two minutes; try again later.");
        }

        try
        {
            var version = await ReadVersionAsync(connection, cancellationToken).ConfigureAwait(false);
            if (version > CurrentVersion)
            {
                ThrowIfIncompatible(version);
            }

            var applied = false;
            foreach (var migration in Migrations.Where(m => m.Version > version))
            {
                Log.ApplyingMigration(logger, migration.Version, migration.Description);
                foreach (var batch in ScriptBatches(migration.Sql))
                {
                    try
                    {
                        await connection.ExecuteAsync(new CommandDefinition(batch, cancellationToken: cancellationToken)).ConfigureAwait(false);
                    }
                    catch (MySqlException ex) when (ex.ErrorCode == MySqlErrorCode.BinLogCreateRoutineNeedSuper)
                    {
                        throw new KvStoreException(
                            KvErrorCodes.SchemaMismatch,
                            $"Migration V{migration.Version:000} ({migration.Description}) creates triggers, which the server allows only to an account with " +
                            "SUPER (MariaDB, MySQL 5.7) or SET_USER_ID/SYSTEM_USER (MySQL 8) while the binary log is on. Run the migration as such an " +
                            "account, or set log_bin_trust_function_creators=1 on the server first; then run it again (migrations are safe to re-run).",
                            ex);
                    }
                }

                version = migration.Version;
                applied = true;
            }

            if (!applied)
            {
                Log.SchemaUpToDate(logger, version);
            }

            return version;
        }
        finally
        {
            await connection.ExecuteAsync(new CommandDefinition("DO RELEASE_LOCK(@name)", new { name = MigrationLock }, cancellationToken: CancellationToken.None)).ConfigureAwait(false);
        }
    }

    /// <summary>The database's schema version; 0 when KvStore was never installed.</summary>
    public static async Task<int> GetVersionAsync(string connectionString, CancellationToken cancellationToken = default)
    {
        var connection = new MySqlConnection(connectionString);
        await using var connectionScope = connection.ConfigureAwait(false);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        return await ReadVersionAsync(connection, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Reports what the server lacks for KvStore and KvStore.Cdc (binlog on, ROW format, FULL row
    /// image and metadata, server_id, packet size, no binlog compression) in one result.
    /// </summary>
    public static async Task<KvServerCheck> CheckServerAsync(string connectionString, int maxValueBytes = 1024 * 1024, CancellationToken cancellationToken = default)
    {
        var connection = new MySqlConnection(connectionString);
        await using var connectionScope = connection.ConfigureAwait(false);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        var rows = await connection.QueryAsync<(string Name, string Value)>(new CommandDefinition(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('version', 'log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata', " +
            "'server_id', 'max_allowed_packet', 'log_bin_compress', 'binlog_transaction_compression', 'binlog_row_value_options', 'gtid_strict_mode', 'gtid_mode')",
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        var vars = rows.ToDictionary(r => r.Name.ToLowerInvariant(), r => r.Value, StringComparer.Ordinal);
        string Get(string name) => vars.TryGetValue(name, out var v) ? v : string.Empty;
        var problems = new List<string>();
        var warnings = new List<string>();
        var isMariaDb = Get("version").Contains("MariaDB", StringComparison.OrdinalIgnoreCase);

        if (!IsOn(Get("log_bin")))
        {
            problems.Add("The binary log is off: start the server with log_bin (e.g. log_bin=mariadb-bin).");
        }

        Expect(problems, Get("binlog_format"), "ROW", "binlog_format");
        Expect(problems, Get("binlog_row_image"), "FULL", "binlog_row_image");
        Expect(problems, Get("binlog_row_metadata"), "FULL", "binlog_row_metadata");
        if (Get("server_id") is "0" or "")
        {
            problems.Add("server_id is 0: give the server a unique non-zero server_id.");
        }

        var needPacket = (2L * maxValueBytes) + (1024 * 1024);
        if (long.TryParse(Get("max_allowed_packet"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var packet) && packet < needPacket)
        {
            problems.Add($"max_allowed_packet is {packet} bytes; values of {maxValueBytes} bytes need at least {needPacket} (set max_allowed_packet=64M).");
        }

        if (IsOn(Get("log_bin_compress")))
        {
            problems.Add("log_bin_compress is ON: KvStore.Cdc does not read compressed binlog events; set log_bin_compress=OFF.");
        }

        if (IsOn(Get("binlog_transaction_compression")))
        {
            problems.Add("binlog_transaction_compression is ON: KvStore.Cdc does not read compressed transactions; set it OFF.");
        }

        if (Get("binlog_row_value_options").Contains("PARTIAL_JSON", StringComparison.OrdinalIgnoreCase))
        {
            problems.Add("binlog_row_value_options has PARTIAL_JSON: set binlog_row_value_options=''.");
        }

        if (isMariaDb && !IsOn(Get("gtid_strict_mode")))
        {
            warnings.Add("gtid_strict_mode is OFF: turn it ON so that GTID positions survive a failover reliably.");
        }

        return new KvServerCheck(Get("version"), isMariaDb, problems, warnings);
    }

    internal static async Task<int> GetVersionAsync(MySqlDataSource dataSource, CancellationToken cancellationToken)
    {
        var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connectionScope = connection.ConfigureAwait(false);
        return await ReadVersionAsync(connection, cancellationToken).ConfigureAwait(false);
    }

    internal static void ThrowIfIncompatible(int version)
    {
        if (version == CurrentVersion)
        {
            return;
        }

        var message = version switch
        {
            0 => $"The KvStore schema is not installed in this database. Apply it with KvSchema.MigrateAsync, " +
                 $"`dotnet run --project samples/KvStore.Console -- migrate \"<connection string>\"`, or the SQL in schema.sql (version {CurrentVersion}).",
            < CurrentVersion => $"The KvStore schema is at version {version}; this library needs version {CurrentVersion}. " +
                 "Run the pending migrations (KvSchema.MigrateAsync or `kvstore migrate`, or the V*.sql files after " +
                 $"V{version:000} in KvStore/Schema/Migrations) before starting this version.",
            _ => $"The KvStore schema is at version {version}, newer than this library understands ({CurrentVersion}). " +
                 "Upgrade the application's KvStore package.",
        };
        throw new KvStoreException(KvErrorCodes.SchemaMismatch, message);
    }

    private static async Task<int> ReadVersionAsync(MySqlConnection connection, CancellationToken cancellationToken)
    {
        try
        {
            return await connection.ExecuteScalarAsync<int?>(new CommandDefinition(
                "SELECT MAX(version) FROM kv_schema_version", cancellationToken: cancellationToken)).ConfigureAwait(false) ?? 0;
        }
        catch (MySqlException ex) when (ex.ErrorCode == MySqlErrorCode.NoSuchTable)
        {
            return 0;
        }
    }

    /// <summary>
    /// Splits a migration script into the batches to send, honouring the <c>DELIMITER</c> lines that the
    /// mariadb/mysql command-line clients understand: text between them under the ordinary <c>;</c>
    /// delimiter is one multi-statement batch; under another delimiter every statement (a trigger with
    /// a compound body) is a batch of its own, without the delimiter. Batches of only comments are dropped.
    /// </summary>
    internal static IReadOnlyList<string> ScriptBatches(string script)
    {
        var batches = new List<string>();
        var delimiter = ";";
        var current = new System.Text.StringBuilder();

        void Flush()
        {
            var text = current.ToString().Trim();
            current.Clear();
            var hasStatement = text.Split('\n').Any(line => line.Trim() is { Length: > 0 } t && !t.StartsWith("--", StringComparison.Ordinal));
            if (hasStatement)
            {
                batches.Add(text);
            }
        }

        foreach (var line in script.ReplaceLineEndings("\n").Split('\n'))
        {
            var trimmed = line.Trim();
            if (trimmed.StartsWith("DELIMITER ", StringComparison.OrdinalIgnoreCase))
            {
                Flush();
                delimiter = trimmed["DELIMITER ".Length..].Trim();
                continue;
            }

            if (delimiter != ";" && trimmed.EndsWith(delimiter, StringComparison.Ordinal))
            {
                current.Append(line.AsSpan(0, line.LastIndexOf(delimiter, StringComparison.Ordinal))).Append('\n');
                Flush();
                continue;
            }

            current.Append(line).Append('\n');
        }

        Flush();
        return batches;
    }

    private static bool IsOn(string value) => value.Equals("ON", StringComparison.OrdinalIgnoreCase) || value == "1";

    private static void Expect(List<string> problems, string actual, string expected, string variable)
    {
        if (!actual.Equals(expected, StringComparison.OrdinalIgnoreCase))
        {
            problems.Add($"{variable} is '{actual}', needs '{expected}': set {variable}={expected}.");
        }
    }

    private static List<KvMigration> LoadMigrations()
    {
        var assembly = typeof(KvSchema).Assembly;
        var list = new List<KvMigration>();
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)))
        {
            // KvStore.Migrations.V001__initial.sql
            var file = name[ResourcePrefix.Length..^".sql".Length];
            var separator = file.IndexOf("__", StringComparison.Ordinal);
            var version = int.Parse(file[..separator], CultureInfo.InvariantCulture);
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream);
            list.Add(new KvMigration(version, file[(separator + 2)..].Replace('_', ' '), reader.ReadToEnd()));
        }

        return [.. list.OrderBy(m => m.Version)];
    }
}

/// <summary>One versioned schema migration (plain SQL, idempotent).</summary>
/// <param name="Version">The schema version the migration brings the database to.</param>
/// <param name="Description">What it does.</param>
/// <param name="Sql">The SQL script.</param>
public sealed record KvMigration(int Version, string Description, string Sql);

/// <summary>The result of <see cref="KvSchema.CheckServerAsync"/>.</summary>
/// <param name="ServerVersion">The server's version string.</param>
/// <param name="IsMariaDb">True for MariaDB, false for MySQL.</param>
/// <param name="Problems">Settings that must change before KvStore.Cdc can run; empty when ready.</param>
/// <param name="Warnings">Recommended changes.</param>
public sealed record KvServerCheck(string ServerVersion, bool IsMariaDb, IReadOnlyList<string> Problems, IReadOnlyList<string> Warnings)
{
    /// <summary>True when nothing is missing.</summary>
    public bool IsReady => Problems.Count == 0;

    /// <inheritdoc />
    public override string ToString() => IsReady
        ? $"{ServerVersion}: ready"
        : $"{ServerVersion}: {Problems.Count} problem(s):{Environment.NewLine}- " + string.Join(Environment.NewLine + "- ", Problems);
}
