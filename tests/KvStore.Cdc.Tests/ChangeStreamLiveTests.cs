using System.Text;
using System.Text.Json;
using KvStore.Expiry;
using KvStore.TestInfrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace KvStore.Cdc.Tests;

/// <summary>The change stream against a live MariaDB: every KvStore operation, transactions, rollbacks, limits.</summary>
public sealed class ChangeStreamLiveTests(CdcDatabase db) : IClassFixture<CdcDatabase>
{
    private KvStoreClient Kv => db.Client;

    private static string NewTable() => "t-" + Guid.NewGuid().ToString("N")[..10];

    private static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement.Clone();

    [Fact]
    public async Task Every_kvstore_operation_yields_exactly_the_expected_changes_in_order()
    {
        var table = NewTable();
        await using var probe = await StreamProbe.StartAsync(db.NewStream());

        await Kv.PutAsync(table, "a", Json("""{"v":1}"""));                              // 1 put
        await Kv.PutAsync(table, "a", Json("""{"v":2}"""), new KvPutOptions { IfRevision = 1 }); // 2 put
        await Kv.IncrementAsync(table, "n", 5);                                            // 3 put 5
        await Kv.DeleteAsync(table, "a");                                                  // 4 delete
        await Kv.CommitAsync(new KvBatch(table).Put("b", Json("true")).Put("c", Json("\"x\"")).Delete("n")); // 5,6,7
        await Kv.SetTtlAsync(table, "b", TimeSpan.FromHours(1));                           // 8 put with expiry
        await Kv.PersistAsync(table, "b");                                                 // 9 put without
        var conflict = await Assert.ThrowsAsync<KvConflictException>(() => Kv.PutAsync(table, "b", Json("0"), new KvPutOptions { IfAbsent = true }));
        await Kv.PutAsync(table, "short", Json("1"), new KvPutOptions { Ttl = TimeSpan.FromMilliseconds(50) }); // 10
        var expiry = new KvExpiryService(Kv, Options.Create(new KvExpiryOptions { LockName = "x" + table }), NullLogger<KvExpiryService>.Instance);
        await WaitUntilExpiredAsync(table, "short");
        await expiry.RunCycleAsync(CancellationToken.None);                                // 11 expire

        var batches = await probe.UntilRevisionAsync(table, 11);
        var mine = batches.Select(b => b.Changes.Where(c => c.Table == table).ToList()).Where(l => l.Count > 0).ToList();
        var changes = mine.SelectMany(l => l).ToList();

        Assert.Equal(Enumerable.Range(1, 11).Select(i => (long)i), changes.Select(c => c.Revision));
        Assert.Equal(
            ["a:Put", "a:Put", "n:Put", "a:Delete", "b:Put", "c:Put", "n:Delete", "b:Put", "b:Put", "short:Put", "short:Expire"],
            changes.Select(c => $"{c.Key}:{c.Operation}"));
        Assert.Equal(2, changes[1].Value.GetProperty("v").GetInt32());
        Assert.Equal(5, changes[2].Value.GetInt64());
        Assert.Equal(JsonValueKind.Undefined, changes[3].Value.ValueKind);
        Assert.NotNull(changes[7].ExpiresAt);
        Assert.Null(changes[8].ExpiresAt);
        Assert.Equal(3, mine[4].Count); // the batch is one transaction
        Assert.All(changes, c => Assert.False(c.IsUnversioned));
        Assert.Equal(1, changes[1].CreatedRevision);
        Assert.Equal(KvErrorCodes.Conflict, conflict.Code);
        var stored = await Kv.GetAsync(table, "c");
        Assert.Equal(stored!.UpdatedAt, changes[5].UpdatedAt);
        Assert.Equal(stored.CreatedAt, changes[5].CreatedAt);
    }

    [Fact]
    public async Task Rolled_back_transactions_yield_nothing()
    {
        var table = NewTable();
        await using var probe = await StreamProbe.StartAsync(db.NewStream());

        await db.ExecuteAsync(
            "START TRANSACTION;" +
            $"INSERT INTO kv_entries (tbl, k, v, rev, created_rev, created_at, updated_at, state) VALUES ('{table}', 'ghost', '1', 100, 100, NOW(6), NOW(6), 0);" +
            "ROLLBACK");
        await Kv.PutAsync(table, "real", Json("1"));

        var batch = await probe.NextAsync();
        Assert.Equal(["real"], batch.Changes.Select(c => c.Key));
    }

    [Fact]
    public async Task A_transaction_touching_several_tables_is_one_batch_in_commit_order()
    {
        var t1 = NewTable();
        var t2 = NewTable();
        await using var probe = await StreamProbe.StartAsync(db.NewStream());

        await db.ExecuteAsync(
            "START TRANSACTION;" +
            $"INSERT INTO kv_entries (tbl, k, v, rev, created_rev, created_at, updated_at, state) VALUES ('{t1}', 'x', '1', 1, 1, NOW(6), NOW(6), 0);" +
            $"INSERT INTO kv_entries (tbl, k, v, rev, created_rev, created_at, updated_at, state) VALUES ('{t2}', 'y', '2', 1, 1, NOW(6), NOW(6), 0);" +
            $"INSERT INTO kv_entries (tbl, k, v, rev, created_rev, created_at, updated_at, state) VALUES ('{t1}', 'z', '3', 2, 2, NOW(6), NOW(6), 0);" +
            "COMMIT");

        var batch = await probe.NextAsync();
        Assert.Equal([$"{t1}/x", $"{t2}/y", $"{t1}/z"], batch.Changes.Select(c => $"{c.Table}/{c.Key}"));
    }

    [Fact]
    public async Task Concurrent_puts_committed_together_by_the_client_arrive_each_with_its_own_result()
    {
        var tables = Enumerable.Range(0, 3).Select(_ => NewTable()).ToArray();
        foreach (var table in tables)
        {
            await Kv.PutAsync(table, "seed", 0);
        }

        await using var probe = await StreamProbe.StartAsync(db.NewStream());
        // 60 puts at once: the client runs 2 put transactions and coalesces the rest into groups that span tables.
        var results = await Task.WhenAll(Enumerable.Range(0, 60).Select(i => Kv.PutAsync(tables[i % 3], "k" + i, i)));

        var expected = results.Select(r => (r.Table, r.Revision)).ToHashSet();
        var byRevision = new Dictionary<(string, long), KvChange>();
        while (!expected.IsSubsetOf(byRevision.Keys))
        {
            foreach (var change in (await probe.NextAsync()).Changes)
            {
                byRevision[(change.Table, change.Revision)] = change;
            }
        }

        foreach (var result in results)
        {
            var change = byRevision[(result.Table, result.Revision)];
            Assert.Equal(result.Key, change.Key);
            Assert.Equal(result.CreatedRevision, change.CreatedRevision);
            Assert.Equal(result.CreatedAt, change.CreatedAt);
            Assert.Equal(result.UpdatedAt, change.UpdatedAt);
            Assert.Equal(result.Value.GetInt32(), change.Value.GetInt32());
        }
    }

    [Fact]
    public async Task Purging_tombstones_yields_nothing_and_a_hand_delete_yields_an_unversioned_delete()
    {
        var table = NewTable();
        await Kv.PutAsync(table, "keep", Json("1"));
        await Kv.PutAsync(table, "gone", Json("2"));
        await Kv.DeleteAsync(table, "gone");
        await using var probe = await StreamProbe.StartAsync(db.NewStream());

        await db.ExecuteAsync($"DELETE FROM kv_entries WHERE tbl = '{table}' AND k = 'gone'"); // purge of a tombstone
        await db.ExecuteAsync($"DELETE FROM kv_entries WHERE tbl = '{table}' AND k = 'keep'"); // by hand
        var batch = await probe.NextAsync();

        var change = Assert.Single(batch.Changes);
        Assert.Equal("keep", change.Key);
        Assert.Equal(KvChangeOperation.Delete, change.Operation);
        Assert.True(change.IsUnversioned);
        Assert.Equal(1, change.Revision);
    }

    [Fact]
    public async Task Values_of_16_MiB_and_unicode_keys_arrive_intact()
    {
        var table = NewTable();
        await using var probe = await StreamProbe.StartAsync(db.NewStream());
        var big = "\"" + new string('x', KvStoreOptions.HardMaxValueBytes - 2) + "\"";
        const string key = "ключ/日本語/😀";

        await Kv.PutJsonAsync(table, key, Encoding.UTF8.GetBytes(big));
        var batch = await probe.NextAsync(TimeSpan.FromSeconds(60));

        var change = Assert.Single(batch.Changes);
        Assert.Equal(key, change.Key);
        Assert.Equal(KvStoreOptions.HardMaxValueBytes - 2, change.Value.GetString()!.Length);
    }

    [Fact]
    public async Task Invalid_json_written_by_hand_is_forwarded_as_a_string_and_the_stream_goes_on()
    {
        var table = NewTable();
        await Kv.PutAsync(table, "a", Json("1"));
        await using var probe = await StreamProbe.StartAsync(db.NewStream());

        await db.ExecuteAsync($"UPDATE kv_entries SET v = 'not json' WHERE tbl = '{table}' AND k = 'a'");
        await Kv.PutAsync(table, "b", Json("2"));
        var broken = await probe.NextAsync();
        var next = await probe.NextAsync();

        Assert.Equal("not json", Assert.Single(broken.Changes).Value.GetString());
        Assert.Equal("\"not json\""u8.ToArray(), Assert.Single(broken.Changes).ValueUtf8.ToArray());
        Assert.Equal("b", Assert.Single(next.Changes).Key);
    }

    [Fact]
    public async Task Value_bytes_are_the_stored_bytes_and_always_valid_json()
    {
        var table = NewTable();
        var formatted = Encoding.UTF8.GetBytes("{ \"name\" : \"Zoë 😀\",\n  \"n\": [1, 2.50, -0e3] }");
        await Kv.CommitAsync(new KvBatch(table).Put("empty", Json("0")).Put("tail", Json("0")).Put("bytes", Json("0")));
        await using var probe = await StreamProbe.StartAsync(db.NewStream());

        await Kv.PutJsonAsync(table, "formatted", formatted);
        await db.ExecuteAsync(
            $"UPDATE kv_entries SET v = CASE k WHEN 'empty' THEN '' WHEN 'tail' THEN '[1] 2' ELSE X'FF41' END WHERE tbl = '{table}' AND k <> 'formatted'");
        var put = Assert.Single((await probe.NextAsync()).Changes);
        var byHand = (await probe.NextAsync()).Changes.ToDictionary(c => c.Key);

        Assert.Equal(formatted, put.ValueUtf8.ToArray());
        Assert.Equal("Zoë 😀", put.Value.GetProperty("name").GetString());
        Assert.Equal(3, byHand.Count);
        Assert.Equal("\"\""u8.ToArray(), byHand["empty"].ValueUtf8.ToArray());
        Assert.Equal("", byHand["empty"].Value.GetString());
        Assert.Equal("[1]"u8.ToArray(), byHand["tail"].ValueUtf8.ToArray());
        Assert.Equal(1, byHand["tail"].Value.GetArrayLength());
        Assert.Equal("\uFFFDA", byHand["bytes"].Value.GetString());
        Assert.All(byHand.Values, c => Assert.Equal(c.Value.GetRawText(), Encoding.UTF8.GetString(c.ValueUtf8.Span)));
    }

    [Fact]
    public async Task Batch_position_round_trips_as_a_resume_token()
    {
        var table = NewTable();
        await using var probe = await StreamProbe.StartAsync(db.NewStream());
        await Kv.PutAsync(table, "a", Json("1"));
        var batch = await probe.NextAsync();

        Assert.Equal(batch.Position, KvStreamPosition.Parse(batch.Position.ToString()));
        Assert.StartsWith("mariadb-bin.", batch.Position.File);
        Assert.NotNull(batch.Position.Gtid);
        Assert.True(batch.CommittedAt > DateTimeOffset.UtcNow.AddMinutes(-5));
    }

    [Fact]
    public async Task Startup_check_reports_every_missing_privilege_in_one_message()
    {
        var user = "weak" + Guid.NewGuid().ToString("N")[..6];
        await db.Server.ExecuteAsync($"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'pw'; GRANT SELECT, INSERT, UPDATE, DELETE ON `{db.Name}`.* TO '{user}'@'127.0.0.1'");
        var cs = new MySqlConnector.MySqlConnectionStringBuilder(db.ConnectionString) { UserID = user, Password = "pw" }.ConnectionString;
        await using var probe = new StreamProbe(CdcDatabase.NewStream(cs, null));

        var error = await probe.FailureAsync();

        var kv = Assert.IsType<KvStoreException>(error);
        Assert.Equal("cdc_not_ready", kv.Code);
        Assert.Contains("REPLICATION SLAVE", kv.Message);
        Assert.Contains("BINLOG MONITOR", kv.Message);
    }

    private Task WaitUntilExpiredAsync(string table, string key) =>
        Eventually.UntilAsync(async () => await Kv.GetAsync(table, key) is null, () => "the key never expired");
}
