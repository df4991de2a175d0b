using KvStore.TestInfrastructure;

namespace KvStore.Tests;

public sealed class KvSchemaTests(KvDatabase db) : IClassFixture<KvDatabase>
{
    [Fact]
    public async Task Migrate_is_idempotent_and_reports_the_current_version()
    {
        Assert.Equal(KvSchema.CurrentVersion, await KvSchema.MigrateAsync(db.ConnectionString));
        Assert.Equal(KvSchema.CurrentVersion, await KvSchema.MigrateAsync(db.ConnectionString));
        Assert.Equal(KvSchema.CurrentVersion, await KvSchema.GetVersionAsync(db.ConnectionString));
    }

    [Fact]
    public async Task Concurrent_migrators_wait_for_each_other_and_both_succeed()
    {
        var fresh = new TestDatabase();
        await fresh.InitializeAsync();
        try
        {
            var versions = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => KvSchema.MigrateAsync(fresh.ConnectionString)));
            Assert.All(versions, v => Assert.Equal(KvSchema.CurrentVersion, v));
        }
        finally
        {
            await fresh.DisposeAsync();
        }
    }

    [Fact]
    public async Task Client_refuses_a_database_without_the_schema_and_says_what_to_run()
    {
        var empty = new TestDatabase();
        await empty.InitializeAsync();
        try
        {
            await using var client = new KvStoreClient(new KvStoreOptions { ConnectionString = empty.ConnectionString });
            var ex = await Assert.ThrowsAsync<KvStoreException>(() => client.GetAsync("t", "k"));
            Assert.Equal(KvErrorCodes.SchemaMismatch, ex.Code);
            Assert.Contains("migrate", ex.Message, StringComparison.OrdinalIgnoreCase);
            Assert.Contains("schema.sql", ex.Message);
            Assert.Equal(0, await KvSchema.GetVersionAsync(empty.ConnectionString));
        }
        finally
        {
            await empty.DisposeAsync();
        }
    }

    [Fact]
    public async Task Client_refuses_a_newer_schema_version()
    {
        var newer = new TestDatabase();
        await newer.InitializeAsync();
        try
        {
            await KvSchema.MigrateAsync(newer.ConnectionString);
            await newer.Server.ExecuteAsync("INSERT INTO kv_schema_version VALUES (99, 'future', UTC_TIMESTAMP(6))", newer.Name);
            await using var client = new KvStoreClient(new KvStoreOptions { ConnectionString = newer.ConnectionString });

            var ex = await Assert.ThrowsAsync<KvStoreException>(() => client.EnsureSchemaAsync());
            var migrate = await Assert.ThrowsAsync<KvStoreException>(() => KvSchema.MigrateAsync(newer.ConnectionString));

            Assert.Equal(KvErrorCodes.SchemaMismatch, ex.Code);
            Assert.Contains("Upgrade", ex.Message);
            Assert.Equal(KvErrorCodes.SchemaMismatch, migrate.Code);
        }
        finally
        {
            await newer.DisposeAsync();
        }
    }

    [Fact]
    public void Schema_sql_at_the_root_matches_the_migrations()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "KvStore.sln")))
        {
            root = Path.GetDirectoryName(root) ?? throw new DirectoryNotFoundException("repository root");
        }

        var schema = File.ReadAllText(Path.Combine(root, "schema.sql"));
        foreach (var migration in KvSchema.Migrations)
        {
            Assert.Contains($"-- >>> migration V{migration.Version:000}", schema);
            Assert.Contains(migration.Sql.Trim(), schema.ReplaceLineEndings("\n"));
        }

        Assert.Contains("CREATE TABLE IF NOT EXISTS kv_entries", schema);
    }

    [Fact]
    public async Task Schema_sql_applies_to_an_empty_database_and_is_safe_to_rerun()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "KvStore.sln")))
        {
            root = Path.GetDirectoryName(root)!;
        }

        var sql = await File.ReadAllTextAsync(Path.Combine(root, "schema.sql"));
        var fresh = new TestDatabase();
        await fresh.InitializeAsync();
        try
        {
            await fresh.Server.ExecuteAsync(sql, fresh.Name);
            await fresh.Server.ExecuteAsync(sql, fresh.Name);
            Assert.Equal(KvSchema.CurrentVersion, await KvSchema.GetVersionAsync(fresh.ConnectionString));
        }
        finally
        {
            await fresh.DisposeAsync();
        }
    }

    [Fact]
    public async Task CheckServer_reports_the_test_server_ready()
    {
        var check = await KvSchema.CheckServerAsync(db.ConnectionString);
        Assert.True(check.IsReady, check.ToString());
        Assert.True(check.IsMariaDb);
    }

    [Fact]
    public async Task CheckServer_names_every_missing_setting_in_one_report()
    {
        await using var server = await MariaDbServer.StartAsync("misconfigured", c =>
        {
            c.AppendLine("binlog_format=MIXED");
            c.AppendLine("binlog_row_metadata=MINIMAL");
            c.AppendLine("binlog_row_image=MINIMAL");
            c.AppendLine("max_allowed_packet=4M");
        });

        var check = await KvSchema.CheckServerAsync(server.AdminConnectionString, maxValueBytes: 16 * 1024 * 1024);

        Assert.False(check.IsReady);
        Assert.Contains(check.Problems, p => p.Contains("binlog_format=ROW"));
        Assert.Contains(check.Problems, p => p.Contains("binlog_row_metadata=FULL"));
        Assert.Contains(check.Problems, p => p.Contains("binlog_row_image=FULL"));
        Assert.Contains(check.Problems, p => p.Contains("max_allowed_packet"));
    }
}
