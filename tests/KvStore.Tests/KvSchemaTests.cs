using KvStore.TestInfrastructure;
using Microsoft.Extensions.Time.Testing;

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
    public async Task A_client_that_found_no_schema_works_once_the_database_is_migrated()
    {
        var empty = new TestDatabase();
        await empty.InitializeAsync();
        try
        {
            var time = new FakeTimeProvider();
            await using var client = new KvStoreClient(new KvStoreOptions { ConnectionString = empty.ConnectionString, TimeProvider = time });
            Assert.Equal(KvErrorCodes.SchemaMismatch, (await Assert.ThrowsAsync<KvStoreException>(() => client.PutAsync("t", "k", 1))).Code);

            await KvSchema.MigrateAsync(empty.ConnectionString);
            // The mismatch is remembered for a moment (a wrong schema costs one check per interval)...
            Assert.Equal(KvErrorCodes.SchemaMismatch, (await Assert.ThrowsAsync<KvStoreException>(() => client.PutAsync("t", "k", 1))).Code);
            time.Advance(KvStoreClient.SchemaRecheckInterval);

            // ...then checked again, without a restart.
            Assert.Equal(1, (await client.PutAsync("t", "k", 1)).Revision);
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
            // As a DBA would: the command-line client, which also reads the DELIMITER lines around the triggers.
            await fresh.Server.RunClientScriptAsync(sql, fresh.Name);
            await fresh.Server.RunClientScriptAsync(sql, fresh.Name);
            Assert.Equal(KvSchema.CurrentVersion, await KvSchema.GetVersionAsync(fresh.ConnectionString));

            // The schema is complete: the library works on it, puts included (they need the trigger).
            await using var client = new KvStoreClient(new KvStoreOptions { ConnectionString = fresh.ConnectionString });
            var first = await client.PutJsonAsync("t", "k", "1"u8.ToArray());
            var second = await client.PutJsonAsync("t", "k", "2"u8.ToArray());
            Assert.Equal((1, 1), (first.Revision, first.CreatedRevision));
            Assert.Equal((2, 1), (second.Revision, second.CreatedRevision));
        }
        finally
        {
            await fresh.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_version_1_database_is_refused_until_migrated_and_keeps_its_data()
    {
        var old = new TestDatabase();
        await old.InitializeAsync();
        try
        {
            // Version 1 as an earlier release left it, with data written the version-1 way (explicit revisions).
            await old.Server.ExecuteAsync(KvSchema.Migrations.Single(m => m.Version == 1).Sql, old.Name);
            await old.Server.ExecuteAsync(
                "INSERT INTO kv_tables VALUES ('t', 7, 0, UTC_TIMESTAMP(6));" +
                "INSERT INTO kv_entries (tbl, k, v, rev, created_rev, created_at, updated_at, state) VALUES ('t', 'k', '1', 7, 3, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 0)",
                old.Name);
            await using (var client = new KvStoreClient(new KvStoreOptions { ConnectionString = old.ConnectionString }))
            {
                var ex = await Assert.ThrowsAsync<KvStoreException>(() => client.PutJsonAsync("t", "k", "2"u8.ToArray()));
                Assert.Equal(KvErrorCodes.SchemaMismatch, ex.Code);
                Assert.Contains("version 1", ex.Message);
                Assert.Contains("migrat", ex.Message, StringComparison.OrdinalIgnoreCase);
            }

            Assert.Equal(KvSchema.CurrentVersion, await KvSchema.MigrateAsync(old.ConnectionString));

            await using var migrated = new KvStoreClient(new KvStoreOptions { ConnectionString = old.ConnectionString });
            var put = await migrated.PutJsonAsync("t", "k", "2"u8.ToArray());
            Assert.Equal((8, 3), (put.Revision, put.CreatedRevision));
            Assert.Equal(8, await migrated.GetTableRevisionAsync("t"));
        }
        finally
        {
            await old.DisposeAsync();
        }
    }

    [Fact]
    public async Task Migrating_without_the_privilege_to_create_triggers_says_what_the_DBA_must_do()
    {
        var fresh = new TestDatabase();
        await fresh.InitializeAsync();
        var user = "kvmig_" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            // Everything a schema owner has on the database, but no SUPER; the server has the default log_bin_trust_function_creators=OFF.
            await fresh.Server.ExecuteAsync(
                $"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'pw'; GRANT ALL PRIVILEGES ON `{fresh.Name}`.* TO '{user}'@'127.0.0.1';");
            var connectionString = new MySqlConnector.MySqlConnectionStringBuilder(fresh.ConnectionString) { UserID = user, Password = "pw" }.ConnectionString;

            var ex = await Assert.ThrowsAsync<KvStoreException>(() => KvSchema.MigrateAsync(connectionString));

            Assert.Contains("log_bin_trust_function_creators", ex.Message);
            Assert.Contains("SUPER", ex.Message);
            Assert.Equal(1, await KvSchema.GetVersionAsync(fresh.ConnectionString));

            // Once an account with the privilege has run it, the migration is complete.
            Assert.Equal(KvSchema.CurrentVersion, await KvSchema.MigrateAsync(fresh.ConnectionString));
        }
        finally
        {
            await fresh.Server.ExecuteAsync($"DROP USER IF EXISTS '{user}'@'127.0.0.1'");
            await fresh.DisposeAsync();
        }
    }

    [Fact]
    public void Script_batches_follow_the_clients_DELIMITER_lines()
    {
        const string script = """
            -- only a comment
            CREATE TABLE a (x INT);
            INSERT INTO a VALUES (1);

            DELIMITER ;;
            -- a trigger with a compound body
            CREATE TRIGGER t1 BEFORE INSERT ON a FOR EACH ROW
            BEGIN
              SET NEW.x = NEW.x + 1;
            END;;
            CREATE TRIGGER t2 BEFORE UPDATE ON a FOR EACH ROW SET NEW.x = 2;;
            DELIMITER ;
            INSERT INTO a VALUES (3);
            """;

        var batches = KvSchema.ScriptBatches(script);

        Assert.Equal(4, batches.Count);
        Assert.Equal("-- only a comment\nCREATE TABLE a (x INT);\nINSERT INTO a VALUES (1);", batches[0]);
        Assert.Equal("-- a trigger with a compound body\nCREATE TRIGGER t1 BEFORE INSERT ON a FOR EACH ROW\nBEGIN\n  SET NEW.x = NEW.x + 1;\nEND", batches[1]);
        Assert.Equal("CREATE TRIGGER t2 BEFORE UPDATE ON a FOR EACH ROW SET NEW.x = 2", batches[2]);
        Assert.Equal("INSERT INTO a VALUES (3);", batches[3]);
        Assert.DoesNotContain(batches, b => b.Contains("DELIMITER", StringComparison.Ordinal));
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
