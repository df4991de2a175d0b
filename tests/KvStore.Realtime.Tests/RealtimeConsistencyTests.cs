using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using KvStore.TestInfrastructure;
using MySqlConnector;

namespace KvStore.Realtime.Tests;

/// <summary>The edges of "every committed change reaches every subscriber": commits in flight, changes the stream never saw, big tables, idle clients, standby nodes.</summary>
public sealed class RealtimeConsistencyTests(RealtimeFixture fx) : IClassFixture<RealtimeFixture>
{
    private static string NewTable(string prefix = "t") => prefix + "-" + Guid.NewGuid().ToString("N")[..10];

    private KvStoreClient Kv => (KvStoreClient)fx.Host.Services.GetService(typeof(KvStoreClient))!;

    [Fact]
    public async Task Subscribe_includes_a_change_whose_commit_is_still_in_flight()
    {
        // The binlog holds a transaction before its commit is visible, so the publisher can send a
        // change before a snapshot could see it. A transaction holding the table row stands in for it.
        var table = NewTable();
        await Kv.PutAsync(table, "a", 1);
        await using var writer = await fx.HoldTableRowAsync(table);
        await ExecuteAsync(writer, table,
            "UPDATE kv_tables SET rev = 2 WHERE name = @t;" +
            "INSERT INTO kv_entries (tbl, k, v, rev, created_rev, created_at, updated_at, state) VALUES (@t, 'b', '2', 2, 2, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 0)");
        await using var client = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);

        var subscribe = client.SubscribeAsync(table);
        await fx.WaitForStatementsAsync("SELECT rev FROM kv_tables WHERE name = % LOCK IN SHARE MODE");
        Assert.False(subscribe.IsCompleted);
        await ExecuteAsync(writer, table, "COMMIT");
        var result = await subscribe;

        Assert.Equal(2, result.Revision);
        Assert.Equal(["a", "b"], result.Entries.Select(e => e.Key));
    }

    [Fact]
    public async Task A_client_that_missed_a_change_resumes_when_the_next_frame_does_not_follow_its_revision()
    {
        var table = NewTable();
        await Kv.PutAsync(table, "a", 1);
        await using var client = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
        await client.SubscribeAsync(table);

        // A change the binlog never carries (sql_log_bin=0, as a DBA's maintenance session might do):
        // no frame is sent for revision 2, and the client must not silently skip it.
        await using (var unlogged = new MySqlConnection(fx.Server.AdminConnectionString))
        {
            await unlogged.OpenAsync();
            await unlogged.ChangeDatabaseAsync(fx.Name);
            await ExecuteAsync(unlogged, table,
                "SET SESSION sql_log_bin = 0; START TRANSACTION;" +
                "UPDATE kv_tables SET rev = 2 WHERE name = @t;" +
                "INSERT INTO kv_entries (tbl, k, v, rev, created_rev, created_at, updated_at, state) VALUES (@t, 'b', '2', 2, 2, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 0);" +
                "COMMIT");
        }

        var third = await Kv.PutAsync(table, "c", 3);
        await client.WaitForRevisionAsync(third.Revision);
        await Eventually.UntilAsync(() => client.LiveValues().Count == 3 || client.ResumeError is not null, () => $"the client resumed: it holds {string.Join(",", client.LiveValues().Keys)}");

        Assert.Null(client.ResumeError);
        // (The frame of "a" may also arrive, after the subscribe; the client drops it by revision.)
        var frame = Assert.Single(client.Frames, f => f.Table == table && f.Revision == 3);
        Assert.Equal(2, frame.After);
        Assert.Contains("gap", client.Resumes);
        Assert.Equal(new Dictionary<string, string> { ["a"] = "1", ["b"] = "2", ["c"] = "3" }, client.LiveValues());
    }

    [Fact]
    public async Task Frames_say_which_revision_they_follow()
    {
        var table = NewTable();
        await using var client = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
        await client.SubscribeAsync(table);

        await Kv.PutAsync(table, "a", 1);
        var batch = await Kv.CommitAsync(new KvBatch(table).Put("b", JsonValues.Of("2")).Put("c", JsonValues.Of("3")));
        await client.WaitForRevisionAsync(batch.Revision);

        var frames = client.Frames.Where(f => f.Table == table).ToList();
        Assert.Equal(0, frames[0].After);
        // Whatever the framer merged, frames chain: each follows the previous one's revision.
        for (var i = 1; i < frames.Count; i++)
        {
            Assert.Equal(frames[i - 1].Revision, frames[i].After);
        }

        Assert.Equal(3, frames[^1].Revision);
        Assert.Empty(client.Resumes);
    }

    [Fact]
    public async Task Idle_subscribers_get_progress_with_the_published_revision()
    {
        var table = NewTable();
        await using var client = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
        await client.SubscribeAsync(table);
        var put = await Kv.PutAsync(table, "a", 1);
        await client.WaitForRevisionAsync(put.Revision);

        // The test host sends progress every second.
        await Eventually.UntilAsync(() => client.Progress.Any(p => p.Table == table), () => "a progress message for the table");

        var progress = client.Progress.First(p => p.Table == table);
        Assert.Equal(put.Revision, progress.Revision);
        Assert.Empty(client.Resumes);
    }

    [Fact]
    public async Task A_large_table_is_subscribed_in_pages_and_completed_with_the_list_api()
    {
        var table = NewTable();
        const int Count = 1203;
        for (var offset = 0; offset < Count; offset += 100)
        {
            var batch = new KvBatch(table);
            for (var i = offset; i < Math.Min(Count, offset + 100); i++)
            {
                batch.Put($"k{i:D5}", JsonValues.Of(i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }

            await Kv.CommitAsync(batch);
        }

        await using var client = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
        var first = await client.SubscribeAsync(table);
        Assert.False(first.Complete);
        Assert.Equal(500, first.Entries.Count);
        Assert.Equal(first.Entries[^1].Key, first.ContinueAfterKey);
        Assert.Equal(Count, first.Revision);

        using var http = new HttpClient { BaseAddress = new Uri(fx.Host.BaseUrl) };
        var keys = first.Entries.Select(e => e.Key).ToList();
        for (var after = first.ContinueAfterKey; after is not null;)
        {
            var page = await http.GetFromJsonAsync<KvPageDto>($"/v1/tables/{table}/entries?after={after}&limit=1000", JsonSerializerOptions.Web);
            keys.AddRange(page!.Entries.Select(e => e.Key));
            after = page.Next;
        }

        Assert.Equal(Enumerable.Range(0, Count).Select(i => $"k{i:D5}"), keys);
    }

    [Fact]
    public async Task A_long_resume_is_paged_and_completed_with_the_changes_api()
    {
        var table = NewTable();
        await Kv.PutAsync(table, "start", 0);
        for (var offset = 0; offset < 700; offset += 100)
        {
            var batch = new KvBatch(table);
            for (var i = offset; i < offset + 100; i++)
            {
                batch.Put($"k{i:D4}", JsonValues.Of("1"));
            }

            await Kv.CommitAsync(batch);
        }

        await using var client = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
        var resumed = await client.Connection.InvokeAsync<SubscribeResult>("Subscribe", table, 1L);

        Assert.Equal("changes", resumed.Mode);
        Assert.False(resumed.Complete);
        Assert.Equal(500, resumed.Entries.Count);
        Assert.Equal(501, resumed.Revision);
        Assert.Equal(501, resumed.ContinueAfterRevision);
        using var http = new HttpClient { BaseAddress = new Uri(fx.Host.BaseUrl) };
        var rest = await http.GetFromJsonAsync<KvChangesDto>($"/v1/tables/{table}/changes?after={resumed.ContinueAfterRevision}&limit=1000", JsonSerializerOptions.Web);
        Assert.False(rest!.HasMore);
        Assert.Equal(Enumerable.Range(502, 200).Select(i => (long)i), rest.Changes.Select(c => c.Revision));
    }

    [Fact]
    public async Task A_node_whose_change_stream_is_a_standby_is_not_ready_and_refuses_subscribes()
    {
        // Same database, same stream name as the fixture's host: its reader can only wait, and without
        // a backplane nothing would ever reach this node's subscribers.
        await using var standby = await RealtimeHost.StartAsync(fx.ConnectionString, waitForStream: false);
        var stream = (KvStore.Cdc.KvChangeStream)standby.Services.GetService(typeof(KvStore.Cdc.KvChangeStream))!;
        await Eventually.UntilAsync(() => stream.Status.State == "standby", () => $"the second reader is a standby (is {stream.Status.State})");
        await using var client = await KvTestClient.ConnectAsync(standby.BaseUrl);
        using var http = new HttpClient { BaseAddress = new Uri(standby.BaseUrl) };

        var error = await Assert.ThrowsAsync<HubException>(() => client.SubscribeAsync(NewTable()));
        var ready = await http.GetAsync("/readyz");

        Assert.Equal(KvRealtimeErrorCodes.NotReady, RealtimeHubTests.ErrorCode(error));
        Assert.Contains("standby", error.Message);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Contains("standby", await ready.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Groups_are_forgotten_when_their_last_subscriber_leaves_or_disconnects()
    {
        var manager = (KvStore.Realtime.Hubs.KvHubLifetimeManager)fx.Host.Services.GetService(typeof(KvStore.Realtime.Hubs.KvHubLifetimeManager))!;
        var (left, dropped, shared) = (NewTable(), NewTable(), NewTable());
        var stays = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
        var goes = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
        await stays.SubscribeAsync(shared);
        await goes.SubscribeAsync(shared);
        await goes.SubscribeAsync(left);
        await goes.SubscribeAsync(dropped); // moving on leaves 'left'
        Assert.False(manager.HasLocalGroup(GroupOf(left)));
        Assert.True(manager.HasLocalGroup(GroupOf(dropped)));

        await goes.DisposeAsync();
        await Eventually.UntilAsync(() => !manager.HasLocalGroup(GroupOf(dropped)), () => "the disconnected subscriber's group is removed");

        Assert.True(manager.HasLocalGroup(GroupOf(shared)));
        var put = await Kv.PutAsync(shared, "k", 1);
        await stays.WaitForRevisionAsync(put.Revision);
        await stays.DisposeAsync();
        await Eventually.UntilAsync(() => !manager.HasLocalGroup(GroupOf(shared)), () => "the last subscriber's group is removed");

        static string GroupOf(string table) => KvStore.Realtime.Hubs.KvSubscriptions.GroupName(table);
    }

    private static async Task ExecuteAsync(MySqlConnection connection, string table, string sql)
    {
        await using var command = new MySqlCommand(sql, connection);
        command.Parameters.AddWithValue("@t", table);
        await command.ExecuteNonQueryAsync();
    }
}
