using System.Text;
using System.Text.Json;
using MySqlConnector;

namespace KvStore.Tests;

public sealed class KvStoreReadWriteTests(KvDatabase db) : IClassFixture<KvDatabase>
{
    private KvStoreClient Kv => db.Client;

    private static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement.Clone();

    [Fact]
    public async Task Put_then_get_returns_the_value_with_revision_and_timestamps()
    {
        var table = KvDatabase.NewTable();
        var put = await Kv.PutAsync(table, "a", Json("""{"n":1,"s":"x"}"""));
        var got = await Kv.GetAsync(table, "a");

        Assert.NotNull(got);
        Assert.Equal(1, put.Revision);
        Assert.Equal(put.Revision, got.Revision);
        Assert.Equal(1, got.CreatedRevision);
        Assert.Equal(1, got.Value.GetProperty("n").GetInt32());
        Assert.Equal("x", got.Value.GetProperty("s").GetString());
        Assert.Equal(put.UpdatedAt, got.UpdatedAt);
        Assert.Equal(TimeSpan.Zero, got.CreatedAt.Offset);
        Assert.Null(got.ExpiresAt);
        Assert.Equal(KvEntryState.Live, got.State);
    }

    [Fact]
    public async Task A_single_put_returns_exactly_the_row_it_wrote_whether_it_creates_updates_or_recreates()
    {
        var table = KvDatabase.NewTable();
        var results = new List<KvEntry>
        {
            await Kv.PutAsync(table, "a", 1),                                                       // created
            await Kv.PutAsync(table, "b", 2, new KvPutOptions { Ttl = TimeSpan.FromHours(1) }),     // created with a TTL
            await Kv.PutAsync(table, "a", 3, new KvPutOptions { Ttl = TimeSpan.FromMinutes(5) }),   // updated, TTL added
            await Kv.PutAsync(table, "b", 4),                                                       // updated, TTL removed
        };
        await Kv.DeleteAsync(table, "a");
        results.Add(await Kv.PutAsync(table, "a", 5));                                             // re-created over a tombstone

        var stored = (await Kv.GetChangesAsync(table, 0)).Changes.ToDictionary(c => c.Key);
        foreach (var result in new[] { results[3], results[4] }) // the others were overwritten since; their revisions are checked below
        {
            var row = stored[result.Key];
            Assert.Equal((row.Revision, row.CreatedRevision, row.CreatedAt, row.UpdatedAt, row.ExpiresAt), (result.Revision, result.CreatedRevision, result.CreatedAt, result.UpdatedAt, result.ExpiresAt));
        }

        Assert.Equal([1L, 2, 3, 4, 6], results.Select(r => r.Revision));
        Assert.Equal([1L, 2, 1, 2, 6], results.Select(r => r.CreatedRevision));
        Assert.Equal(results[0].CreatedAt, results[2].CreatedAt);
        Assert.Equal(results[2].UpdatedAt + TimeSpan.FromMinutes(5), results[2].ExpiresAt);
        Assert.Null(results[3].ExpiresAt);
        Assert.Equal(results[4].UpdatedAt, results[4].CreatedAt);
        Assert.Equal(6, await Kv.GetTableRevisionAsync(table));
    }

    [Fact]
    public async Task Without_the_revision_trigger_a_put_fails_clearly_and_writes_nothing()
    {
        var broken = new KvDatabase();
        await broken.InitializeAsync();
        try
        {
            // A database restored without its triggers, say.
            await broken.Server.ExecuteAsync("DROP TRIGGER kv_entries_put_revision", broken.Name);
            var table = KvDatabase.NewTable();

            var ex = await Assert.ThrowsAsync<KvStoreException>(() => broken.Client.PutAsync(table, "a", 1));

            Assert.Equal(KvErrorCodes.SchemaMismatch, ex.Code);
            Assert.Contains("kv_entries_put_revision", ex.Message);
            Assert.Equal(0, await broken.RawEntryCountAsync(table));
            Assert.Null(await broken.RawTableRevisionAsync(table));
        }
        finally
        {
            await broken.DisposeAsync();
        }
    }

    [Fact]
    public async Task Overwrite_takes_the_next_table_revision_and_keeps_created_revision()
    {
        var table = KvDatabase.NewTable();
        await Kv.PutAsync(table, "a", Json("1"));
        await Kv.PutAsync(table, "b", Json("2"));
        var again = await Kv.PutAsync(table, "a", Json("3"));

        Assert.Equal(3, again.Revision);
        Assert.Equal(1, again.CreatedRevision);
        Assert.Equal(3, await Kv.GetTableRevisionAsync(table));
        Assert.True(again.UpdatedAt >= again.CreatedAt);
    }

    [Fact]
    public async Task Revisions_are_counted_per_table()
    {
        var t1 = KvDatabase.NewTable();
        var t2 = KvDatabase.NewTable();
        await Kv.PutAsync(t1, "k", Json("1"));
        await Kv.PutAsync(t1, "k", Json("2"));
        var other = await Kv.PutAsync(t2, "k", Json("1"));

        Assert.Equal(1, other.Revision);
        Assert.Equal(2, await Kv.GetTableRevisionAsync(t1));
        Assert.Equal(0, await Kv.GetTableRevisionAsync(KvDatabase.NewTable()));
    }

    [Fact]
    public async Task Get_of_missing_key_returns_null()
    {
        Assert.Null(await Kv.GetAsync(KvDatabase.NewTable(), "nope"));
    }

    [Fact]
    public async Task Typed_put_and_get_round_trip_with_web_naming()
    {
        var table = KvDatabase.NewTable();
        await Kv.PutAsync(table, "p", new Person("Ada", 36));
        var raw = await Kv.GetAsync(table, "p");
        var typed = await Kv.GetAsync<Person>(table, "p");

        Assert.Equal("Ada", raw!.Value.GetProperty("name").GetString());
        Assert.Equal(new Person("Ada", 36), typed!.Value);
        Assert.Equal(raw.Revision, typed.Revision);
    }

    [Fact]
    public async Task GetMany_returns_only_live_keys()
    {
        var table = KvDatabase.NewTable();
        await Kv.PutAsync(table, "a", Json("1"));
        await Kv.PutAsync(table, "b", Json("2"));
        await Kv.PutAsync(table, "c", Json("3"));
        await Kv.DeleteAsync(table, "b");

        var many = await Kv.GetManyAsync(table, ["a", "b", "c", "zz", "a"]);

        Assert.Equal(["a", "c"], many.Select(e => e.Key).Order().ToArray());
    }

    [Fact]
    public async Task List_pages_in_byte_order_with_prefix_and_keyset_after()
    {
        var table = KvDatabase.NewTable();
        foreach (var key in new[] { "user:03", "user:01", "user:02", "other", "user:04", "usf", "user:é" })
        {
            await Kv.PutAsync(table, key, Json($"\"{key}\""));
        }

        var page1 = await Kv.ListAsync(table, prefix: "user:", limit: 2);
        var page2 = await Kv.ListAsync(table, prefix: "user:", after: page1.NextAfter, limit: 2);
        var page3 = await Kv.ListAsync(table, prefix: "user:", after: page2.NextAfter, limit: 2);
        var all = await Kv.ListAsync(table, limit: 100);

        Assert.Equal(["user:01", "user:02"], page1.Entries.Select(e => e.Key));
        Assert.Equal("user:02", page1.NextAfter);
        Assert.Equal(["user:03", "user:04"], page2.Entries.Select(e => e.Key));
        Assert.Equal(["user:é"], page3.Entries.Select(e => e.Key));
        Assert.Null(page3.NextAfter);
        Assert.Equal(7, all.Entries.Count);
        Assert.Null(all.NextAfter);
        Assert.Equal(7, all.Revision);
    }

    [Fact]
    public async Task List_page_revision_is_the_revision_its_entries_are_at()
    {
        var table = KvDatabase.NewTable();
        for (var i = 0; i < 5; i++)
        {
            await Kv.PutAsync(table, $"k{i}", Json(i.ToString()));
        }

        var page = await Kv.ListAsync(table);

        Assert.Equal(page.Entries.Max(e => e.Revision), page.Revision);
        Assert.Equal(await Kv.GetTableRevisionAsync(table), page.Revision);
    }

    [Fact]
    public async Task List_and_changes_wait_for_a_write_in_flight_on_the_table_and_include_it()
    {
        // A commit is in the binlog (so already on its way to subscribers) before it is visible to
        // other sessions. Here a transaction holding the table row stands in for such a write.
        var table = KvDatabase.NewTable();
        await Kv.PutAsync(table, "a", Json("1"));
        await using var writer = await db.HoldTableRowAsync(table);
        await using (var write = new MySqlCommand(
            "UPDATE kv_tables SET rev = 2 WHERE name = @t;" +
            "INSERT INTO kv_entries (tbl, k, v, rev, created_rev, created_at, updated_at, state) " +
            "VALUES (@t, 'b', '2', 2, 2, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 0)", writer))
        {
            write.Parameters.AddWithValue("@t", table);
            await write.ExecuteNonQueryAsync();
        }

        var list = Kv.ListAsync(table);
        var changes = Kv.GetChangesAsync(table, 1);
        await db.WaitForStatementsAsync("SELECT rev FROM kv_tables WHERE name = % LOCK IN SHARE MODE", count: 2);
        Assert.False(list.IsCompleted);
        Assert.False(changes.IsCompleted);
        await using (var commit = new MySqlCommand("COMMIT", writer))
        {
            await commit.ExecuteNonQueryAsync();
        }

        var page = await list;
        var after1 = await changes;
        Assert.Equal(2, page.Revision);
        Assert.Equal(["a", "b"], page.Entries.Select(e => e.Key));
        Assert.Equal(2, after1.Revision);
        Assert.Equal("b", Assert.Single(after1.Changes).Key);
    }

    [Fact]
    public async Task Unicode_keys_and_values_round_trip()
    {
        var table = KvDatabase.NewTable();
        var key = "ключ/日本語/😀";
        await Kv.PutAsync(table, key, Json("""{"t":"héllo 😀"}"""));

        var got = await Kv.GetAsync(table, key);
        var listed = await Kv.ListAsync(table, prefix: "ключ/");

        Assert.Equal("héllo 😀", got!.Value.GetProperty("t").GetString());
        Assert.Equal(key, Assert.Single(listed.Entries).Key);
    }

    [Fact]
    public async Task Key_of_exactly_255_utf8_bytes_is_accepted()
    {
        var table = KvDatabase.NewTable();
        var key = new string('é', 127) + "x"; // 127 * 2 + 1 = 255 bytes
        Assert.Equal(255, Encoding.UTF8.GetByteCount(key));

        await Kv.PutAsync(table, key, Json("true"));

        Assert.NotNull(await Kv.GetAsync(table, key));
    }

    [Fact]
    public async Task Delete_writes_a_tombstone_with_a_new_revision()
    {
        var table = KvDatabase.NewTable();
        var put = await Kv.PutAsync(table, "a", Json("1"));
        var tombstone = await Kv.DeleteAsync(table, "a");

        Assert.NotNull(tombstone);
        Assert.Equal(put.Revision + 1, tombstone.Revision);
        Assert.Equal(KvEntryState.Deleted, tombstone.State);
        Assert.Null(await Kv.GetAsync(table, "a"));
        Assert.Empty((await Kv.ListAsync(table)).Entries);
        Assert.Equal(1, await db.RawEntryCountAsync(table));
        var changes = await Kv.GetChangesAsync(table, put.Revision);
        var change = Assert.Single(changes.Changes);
        Assert.Equal(KvEntryState.Deleted, change.State);
        Assert.Equal(tombstone.Revision, change.Revision);
    }

    [Fact]
    public async Task Delete_of_absent_key_changes_nothing_and_returns_null()
    {
        var table = KvDatabase.NewTable();
        await Kv.PutAsync(table, "a", Json("1"));
        await Kv.DeleteAsync(table, "a");

        Assert.Null(await Kv.DeleteAsync(table, "a"));
        Assert.Null(await Kv.DeleteAsync(table, "never"));
        Assert.Equal(2, await Kv.GetTableRevisionAsync(table));
        Assert.Null(await db.RawTableRevisionAsync(KvDatabase.NewTable()));
    }

    [Fact]
    public async Task Put_after_delete_recreates_the_key_with_a_new_created_revision()
    {
        var table = KvDatabase.NewTable();
        await Kv.PutAsync(table, "a", Json("1"));
        await Kv.DeleteAsync(table, "a");
        var again = await Kv.PutAsync(table, "a", Json("2"));

        Assert.Equal(3, again.Revision);
        Assert.Equal(3, again.CreatedRevision);
    }

    [Fact]
    public async Task IfRevision_put_succeeds_on_match_and_conflicts_with_current_revision_otherwise()
    {
        var table = KvDatabase.NewTable();
        var v1 = await Kv.PutAsync(table, "a", Json("1"), new KvPutOptions { IfRevision = 0 });
        var v2 = await Kv.PutAsync(table, "a", Json("2"), new KvPutOptions { IfRevision = v1.Revision });

        var conflict = await Assert.ThrowsAsync<KvConflictException>(
            () => Kv.PutAsync(table, "a", Json("3"), new KvPutOptions { IfRevision = v1.Revision }));

        Assert.Equal(KvErrorCodes.Conflict, conflict.Code);
        Assert.Equal(v2.Revision, conflict.CurrentRevision);
        Assert.Equal(v1.Revision, conflict.ExpectedRevision);
        Assert.Equal(2, (await Kv.GetAsync(table, "a"))!.Value.GetInt32());
        Assert.Equal(v2.Revision, await Kv.GetTableRevisionAsync(table));
    }

    [Fact]
    public async Task IfRevision_zero_conflicts_when_the_key_exists()
    {
        var table = KvDatabase.NewTable();
        var v1 = await Kv.PutAsync(table, "a", Json("1"));

        var conflict = await Assert.ThrowsAsync<KvConflictException>(
            () => Kv.PutAsync(table, "a", Json("2"), new KvPutOptions { IfRevision = 0 }));

        Assert.Equal(v1.Revision, conflict.CurrentRevision);
    }

    [Fact]
    public async Task IfAbsent_creates_once_and_treats_tombstones_as_absent()
    {
        var table = KvDatabase.NewTable();
        await Kv.PutAsync(table, "a", Json("1"), new KvPutOptions { IfAbsent = true });
        var conflict = await Assert.ThrowsAsync<KvConflictException>(
            () => Kv.PutAsync(table, "a", Json("2"), new KvPutOptions { IfAbsent = true }));
        await Kv.DeleteAsync(table, "a");
        var recreated = await Kv.PutAsync(table, "a", Json("3"), new KvPutOptions { IfAbsent = true });

        Assert.Null(conflict.ExpectedRevision);
        Assert.Equal(1, conflict.CurrentRevision);
        Assert.Equal(3, recreated.Revision);
        Assert.Equal(3, recreated.CreatedRevision);
    }

    [Fact]
    public async Task Delete_with_wrong_revision_conflicts_and_keeps_the_key()
    {
        var table = KvDatabase.NewTable();
        var v1 = await Kv.PutAsync(table, "a", Json("1"));

        await Assert.ThrowsAsync<KvConflictException>(() => Kv.DeleteAsync(table, "a", ifRevision: v1.Revision + 5));
        var deleted = await Kv.DeleteAsync(table, "a", ifRevision: v1.Revision);

        Assert.NotNull(deleted);
        Assert.Null(await Kv.GetAsync(table, "a"));
    }

    [Fact]
    public async Task SetTtl_and_Persist_change_expiry_with_new_revisions()
    {
        var table = KvDatabase.NewTable();
        var v1 = await Kv.PutAsync(table, "a", Json("1"));
        var withTtl = await Kv.SetTtlAsync(table, "a", TimeSpan.FromHours(1));
        var persisted = await Kv.PersistAsync(table, "a");

        Assert.Equal(v1.Revision + 1, withTtl.Revision);
        Assert.NotNull(withTtl.ExpiresAt);
        Assert.InRange(withTtl.ExpiresAt!.Value - withTtl.UpdatedAt, TimeSpan.FromMinutes(59.9), TimeSpan.FromMinutes(60.1));
        Assert.Equal(v1.Revision + 2, persisted.Revision);
        Assert.Null(persisted.ExpiresAt);
        Assert.Null((await Kv.GetAsync(table, "a"))!.ExpiresAt);
        Assert.Equal(1, persisted.Value.GetInt32());
    }

    [Fact]
    public async Task SetTtl_on_missing_key_is_not_found()
    {
        var ex = await Assert.ThrowsAsync<KvStoreException>(() => Kv.SetTtlAsync(KvDatabase.NewTable(), "x", TimeSpan.FromMinutes(1)));
        Assert.Equal(KvErrorCodes.NotFound, ex.Code);
    }

    [Fact]
    public async Task Put_replaces_ttl_and_put_with_ttl_sets_it()
    {
        var table = KvDatabase.NewTable();
        var withTtl = await Kv.PutAsync(table, "a", Json("1"), new KvPutOptions { Ttl = TimeSpan.FromMinutes(5) });
        var plain = await Kv.PutAsync(table, "a", Json("2"));

        Assert.NotNull(withTtl.ExpiresAt);
        Assert.Null(plain.ExpiresAt);
    }

    [Fact]
    public async Task Increment_creates_at_delta_then_adds()
    {
        var table = KvDatabase.NewTable();
        var first = await Kv.IncrementAsync(table, "claps", 5);
        var second = await Kv.IncrementAsync(table, "claps", -2);

        Assert.Equal(5, first.Value.GetInt64());
        Assert.Equal(3, second.Value.GetInt64());
        Assert.Equal(first.Revision + 1, second.Revision);
    }

    [Theory]
    [InlineData("\"5\"")]
    [InlineData("5.5")]
    [InlineData("1e3")]
    [InlineData("{\"n\":1}")]
    [InlineData("null")]
    public async Task Increment_of_non_integer_fails_and_changes_nothing(string json)
    {
        var table = KvDatabase.NewTable();
        var put = await Kv.PutJsonAsync(table, "a", Encoding.UTF8.GetBytes(json));

        var ex = await Assert.ThrowsAsync<KvStoreException>(() => Kv.IncrementAsync(table, "a", 1));

        Assert.Equal(KvErrorCodes.NotAnInteger, ex.Code);
        Assert.Equal(put.Revision, await Kv.GetTableRevisionAsync(table));
    }

    [Fact]
    public async Task Increment_overflow_fails_and_changes_nothing()
    {
        var table = KvDatabase.NewTable();
        await Kv.PutAsync(table, "a", long.MaxValue - 1);

        await Kv.IncrementAsync(table, "a", 1);
        var ex = await Assert.ThrowsAsync<KvStoreException>(() => Kv.IncrementAsync(table, "a", 1));

        Assert.Equal(KvErrorCodes.Overflow, ex.Code);
        Assert.Equal(long.MaxValue, (await Kv.GetAsync(table, "a"))!.Value.GetInt64());
    }

    [Fact]
    public async Task Increment_keeps_the_ttl()
    {
        var table = KvDatabase.NewTable();
        var put = await Kv.PutAsync(table, "a", 1, new KvPutOptions { Ttl = TimeSpan.FromMinutes(10) });
        var incremented = await Kv.IncrementAsync(table, "a", 1);

        Assert.Equal(put.ExpiresAt, incremented.ExpiresAt);
    }

    [Fact]
    public async Task Commit_applies_all_operations_with_consecutive_revisions_in_order()
    {
        var table = KvDatabase.NewTable();
        await Kv.PutAsync(table, "old", Json("0"));
        var batch = new KvBatch(table)
            .Put("b", Json("2"))
            .Put("a", Json("1"), new KvPutOptions { Ttl = TimeSpan.FromMinutes(1) })
            .Delete("old");

        var result = await Kv.CommitAsync(batch);

        Assert.Equal([2L, 3L, 4L], result.Entries.Select(e => e.Revision));
        Assert.Equal(["b", "a", "old"], result.Entries.Select(e => e.Key));
        Assert.Equal(4, result.Revision);
        Assert.Equal(KvEntryState.Deleted, result.Entries[2].State);
        Assert.NotNull(result.Entries[1].ExpiresAt);
        Assert.Equal(2, (await Kv.ListAsync(table)).Entries.Count);
        Assert.True(result.Entries.Select(e => e.UpdatedAt).Distinct().Count() == 1, "one transaction, one timestamp");
    }

    [Fact]
    public async Task Commit_is_all_or_nothing_when_one_condition_fails()
    {
        var table = KvDatabase.NewTable();
        var existing = await Kv.PutAsync(table, "x", Json("1"));
        var batch = new KvBatch(table)
            .Put("new1", Json("1"))
            .Put("x", Json("2"), new KvPutOptions { IfRevision = existing.Revision + 1 })
            .Put("new2", Json("3"));

        var conflict = await Assert.ThrowsAsync<KvConflictException>(() => Kv.CommitAsync(batch));

        Assert.Equal("x", conflict.Key);
        Assert.Equal(existing.Revision, await Kv.GetTableRevisionAsync(table));
        Assert.Equal(1, await db.RawEntryCountAsync(table));
        Assert.Equal(1, (await Kv.GetAsync(table, "x"))!.Value.GetInt32());
    }

    [Fact]
    public async Task Commit_delete_of_missing_key_fails_the_whole_batch()
    {
        var table = KvDatabase.NewTable();
        var batch = new KvBatch(table).Put("a", Json("1")).Delete("missing");

        var ex = await Assert.ThrowsAsync<KvStoreException>(() => Kv.CommitAsync(batch));

        Assert.Equal(KvErrorCodes.NotFound, ex.Code);
        Assert.Null(await db.RawTableRevisionAsync(table));
    }

    [Fact]
    public async Task Changes_after_a_revision_include_tombstones_in_revision_order()
    {
        var table = KvDatabase.NewTable();
        await Kv.PutAsync(table, "a", Json("1"));
        var mark = await Kv.PutAsync(table, "b", Json("2"));
        await Kv.PutAsync(table, "a", Json("3"));
        await Kv.DeleteAsync(table, "b");
        await Kv.PutAsync(table, "c", Json("4"));

        var changes = await Kv.GetChangesAsync(table, mark.Revision);
        var paged = await Kv.GetChangesAsync(table, mark.Revision, limit: 2);

        Assert.True(changes.HistoryAvailable);
        Assert.False(changes.HasMore);
        Assert.Equal([3L, 4L, 5L], changes.Changes.Select(c => c.Revision));
        Assert.Equal(["a", "b", "c"], changes.Changes.Select(c => c.Key));
        Assert.Equal(KvEntryState.Deleted, changes.Changes[1].State);
        Assert.Equal(5, changes.Revision);
        Assert.True(paged.HasMore);
        Assert.Equal(2, paged.Changes.Count);
    }

    private sealed record Person(string Name, int Age);
}
