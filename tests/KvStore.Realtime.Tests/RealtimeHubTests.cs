using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;

namespace KvStore.Realtime.Tests;

public sealed class RealtimeHubTests(RealtimeFixture fx) : IClassFixture<RealtimeFixture>
{
    private static string NewTable(string prefix = "t") => prefix + "-" + Guid.NewGuid().ToString("N")[..10];

    private KvStoreClient Kv => (KvStoreClient)fx.Host.Services.GetService(typeof(KvStoreClient))!;

    /// <summary>SignalR delivers "An unexpected error occurred invoking 'X' on the server. HubException: code: text".</summary>
    internal static string ErrorCode(HubException error)
    {
        const string marker = "HubException: ";
        var message = error.Message;
        var at = message.IndexOf(marker, StringComparison.Ordinal);
        var text = at < 0 ? message : message[(at + marker.Length)..];
        return text[..text.IndexOf(':', StringComparison.Ordinal)];
    }

    [Fact]
    public async Task Subscribe_returns_a_snapshot_then_every_committed_change()
    {
        var table = NewTable();
        await Kv.PutAsync(table, "before", 1);
        await using var client = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);

        var result = await client.SubscribeAsync(table);
        Assert.Equal("snapshot", result.Mode);
        Assert.True(result.Complete);
        Assert.Equal(1, result.Revision);
        Assert.Equal(["before"], result.Entries.Select(e => e.Key));

        await Kv.PutAsync(table, "a", new { x = 1 });
        await Kv.DeleteAsync(table, "before");
        var batch = await Kv.CommitAsync(new KvBatch(table).Put("b", JsonValues.Of("2")).Put("c", JsonValues.Of("3")));
        var ttl = await Kv.PutAsync(table, "short", 1, new KvPutOptions { Ttl = TimeSpan.FromMilliseconds(100) });
        await client.WaitForRevisionAsync(ttl.Revision + 1); // the expiry service's tombstone

        Assert.Equal(["a", "b", "c"], client.LiveValues().Keys.Order());
        Assert.Equal("delete", client.Entries["before"].Op);
        Assert.Equal("expire", client.Entries["short"].Op);
        // The batch is one transaction: its two changes travel in the same frame.
        Assert.Contains(client.Frames, f => f.Changes.Any(c => c.Key == "b") && f.Changes.Any(c => c.Key == "c"));
        Assert.True(batch.Revision > 0);
        Assert.Equal(1, client.Entries["a"].Value!.Value.GetProperty("x").GetInt32());
    }

    [Fact]
    public async Task Clients_subscribing_while_a_writer_hammers_the_table_all_end_with_its_final_state()
    {
        var table = NewTable();
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            var i = 0;
            while (!stop.IsCancellationRequested)
            {
                i++;
                switch (i % 4)
                {
                    case 0: await Kv.DeleteAsync(table, "k" + (i % 7)); break;
                    case 1: await Kv.IncrementAsync(table, "n", 1); break;
                    default: await Kv.PutAsync(table, "k" + (i % 7), i); break;
                }
            }
        });

        var clients = new List<KvTestClient>();
        for (var c = 0; c < 8; c++)
        {
            var client = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
            await client.SubscribeAsync(table);
            clients.Add(client);
        }

        await stop.CancelAsync();
        await writer;
        var final = await Kv.ListAsync(table, limit: 1000);
        foreach (var client in clients)
        {
            await client.WaitForRevisionAsync(final.Revision);
            Assert.Equal(
                final.Entries.ToDictionary(e => e.Key, e => e.Value.GetRawText()),
                client.LiveValues());
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task Resume_after_a_disconnect_returns_only_what_changed_including_deletes()
    {
        var table = NewTable();
        await using var client = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
        await Kv.PutAsync(table, "a", 1);
        await Kv.PutAsync(table, "b", 2);
        await client.SubscribeAsync(table);
        var held = client.Revision;

        await client.Connection.StopAsync();
        await Kv.PutAsync(table, "a", 10);
        await Kv.DeleteAsync(table, "b");
        await Kv.PutAsync(table, "c", 3);
        await client.Connection.StartAsync();
        var result = await client.SubscribeAsync(table, resumeFrom: held);

        Assert.Equal("changes", result.Mode);
        Assert.False(result.Reset);
        Assert.Equal(["a:put", "b:delete", "c:put"], result.Entries.Select(e => $"{e.Key}:{e.Op}"));
        Assert.Equal(new Dictionary<string, string> { ["a"] = "10", ["c"] = "3" }, client.LiveValues());
        Assert.Equal(5, client.Revision);
    }

    [Fact]
    public async Task Resume_from_a_purged_revision_returns_reset_with_a_full_snapshot()
    {
        var table = NewTable();
        await Kv.PutAsync(table, "a", 1);
        await Kv.PutAsync(table, "b", 2);
        await Kv.DeleteAsync(table, "b");
        await fx.Server.ExecuteAsync($"UPDATE kv_tables SET purged_rev = 3 WHERE name = '{table}'; DELETE FROM kv_entries WHERE tbl = '{table}' AND state <> 0", fx.Name);
        await using var client = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);

        var result = await client.SubscribeAsync(table, resumeFrom: 1);

        Assert.True(result.Reset);
        Assert.Equal("snapshot", result.Mode);
        Assert.Equal(["a"], result.Entries.Select(e => e.Key));
        Assert.Equal(3, result.Revision);
    }

    [Fact]
    public async Task Resume_from_a_revision_the_table_never_reached_returns_reset()
    {
        var table = NewTable();
        await Kv.PutAsync(table, "a", 1);
        await using var client = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);

        var result = await client.SubscribeAsync(table, resumeFrom: 50);

        Assert.True(result.Reset);
        Assert.Equal(1, result.Revision);
        Assert.Equal(["a"], result.Entries.Select(e => e.Key));
    }

    [Fact]
    public async Task The_subscriber_after_the_limit_gets_a_clear_error_code()
    {
        var table = NewTable("small");
        await using var a = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
        await using var b = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
        await using var c = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
        await a.SubscribeAsync(table);
        await b.SubscribeAsync(table);

        var error = await Assert.ThrowsAsync<HubException>(() => c.SubscribeAsync(table));

        Assert.Equal("subscriber_limit", ErrorCode(error));
        await a.Connection.InvokeAsync("Unsubscribe");
        var ok = await c.SubscribeAsync(table);
        Assert.Equal(2, ok.Subscribers);
    }

    [Fact]
    public async Task Subscribing_again_moves_the_connection_to_the_new_table()
    {
        var first = NewTable();
        var second = NewTable();
        await using var client = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
        await client.SubscribeAsync(first);
        await client.SubscribeAsync(second);

        await Kv.PutAsync(first, "x", 1);
        var marker = await Kv.PutAsync(second, "y", 2);
        await client.WaitForRevisionAsync(marker.Revision);
        // Anything for `first` would have been published before `second`'s later commit.
        await using var witness = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
        await witness.SubscribeAsync(first);
        var after = await Kv.PutAsync(first, "z", 3);
        await witness.WaitForRevisionAsync(after.Revision);
        var latest = await Kv.PutAsync(second, "w", 4);
        await client.WaitForRevisionAsync(latest.Revision);

        Assert.DoesNotContain(client.Frames, f => f.Table == first);
    }

    [Fact]
    public async Task A_denied_subscribe_fails_and_receives_nothing_and_denied_writes_change_nothing()
    {
        var secret = NewTable("secret");
        await Kv.PutAsync(secret, "k", 1);
        await using var client = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);

        var subscribe = await Assert.ThrowsAsync<HubException>(() => client.SubscribeAsync(secret));
        var write = await Assert.ThrowsAsync<HubException>(() => client.Connection.InvokeAsync<KvEntryDto>("Put", "readonly-x", "k", JsonValues.Of("1"), null));
        var marker = await Kv.PutAsync(secret, "k", 2);
        var other = NewTable();
        await client.SubscribeAsync(other);
        var later = await Kv.PutAsync(other, "k", 1);
        await client.WaitForRevisionAsync(later.Revision);

        Assert.Equal("forbidden", ErrorCode(subscribe));
        Assert.Equal("forbidden", ErrorCode(write));
        Assert.DoesNotContain(client.Frames, f => f.Table == secret);
        Assert.Equal(0, await Kv.GetTableRevisionAsync("readonly-x"));
        Assert.True(marker.Revision > 0);
    }

    [Theory]
    [InlineData("Put", "bad table", "k", "invalid_table")]
    [InlineData("Put", "t-ok", "", "invalid_key")]
    [InlineData("Increment", "bad/table", "k", "invalid_table")]
    public async Task Bad_input_over_the_hub_is_a_coded_error_and_writes_nothing(string method, string table, string key, string code)
    {
        await using var client = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
        var error = method == "Put"
            ? await Assert.ThrowsAsync<HubException>(() => client.Connection.InvokeAsync<KvEntryDto>("Put", table, key, JsonValues.Of("1"), null))
            : await Assert.ThrowsAsync<HubException>(() => client.Connection.InvokeAsync<KvEntryDto>("Increment", table, key, 1L));

        Assert.Equal(code, ErrorCode(error));
        if (table == "t-ok")
        {
            Assert.Equal(0, await Kv.GetTableRevisionAsync(table));
        }
    }

    [Fact]
    public async Task Hub_writes_answer_after_commit_with_revisions_and_conflicts_carry_the_current_revision()
    {
        var table = NewTable();
        await using var client = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);

        var put = await client.Connection.InvokeAsync<KvEntryDto>("Put", table, "a", JsonValues.Of("{\"v\":1}"), new KvWriteOptionsDto(TtlMs: 60_000));
        var conflict = await Assert.ThrowsAsync<HubException>(() => client.Connection.InvokeAsync<KvEntryDto>("Put", table, "a", JsonValues.Of("2"), new KvWriteOptionsDto(IfRevision: 99)));
        var commit = await client.Connection.InvokeAsync<KvCommitResultDto>("Commit", table, new[]
        {
            new KvBatchOperationDto("put", "b", JsonValues.Of("true")),
            new KvBatchOperationDto("delete", "a"),
        });
        var deleted = await client.Connection.InvokeAsync<KvDeleteResultDto>("Delete", table, "missing", (long?)null);
        var badTtl = await Assert.ThrowsAsync<HubException>(() => client.Connection.InvokeAsync<KvEntryDto>("Put", table, "c", JsonValues.Of("1"), new KvWriteOptionsDto(TtlMs: -5)));

        Assert.Equal(1, put.Revision);
        Assert.NotNull(put.ExpiresAt);
        Assert.Equal("conflict", ErrorCode(conflict));
        Assert.Contains("currentRevision=1", conflict.Message);
        Assert.Equal(3, commit.Revision);
        Assert.False(deleted.Deleted);
        Assert.Equal("invalid_ttl", ErrorCode(badTtl));
        Assert.Equal(3, await Kv.GetTableRevisionAsync(table));
    }

    [Fact]
    public async Task Claps_from_200_concurrent_clients_give_the_exact_total_with_bounded_statements()
    {
        var table = NewTable("article");
        var statements = 0L;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (i, l) =>
        {
            if (i.Name == "kvstore.realtime.increment.statements")
            {
                l.EnableMeasurementEvents(i);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, v, _, _) => Interlocked.Add(ref statements, v));
        listener.Start();

        await using var reader = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
        await reader.SubscribeAsync(table);
        var clients = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => KvTestClient.ConnectAsync(fx.Host.BaseUrl)));
        var started = DateTime.UtcNow;
        var totals = await Task.WhenAll(clients.Select(async client =>
        {
            var seen = new List<long>();
            for (var i = 0; i < 5; i++)
            {
                var entry = await client.Connection.InvokeAsync<KvEntryDto>("Increment", table, "claps", 1L);
                seen.Add(entry.Value!.Value.GetInt64());
            }

            return seen;
        }));
        var elapsed = DateTime.UtcNow - started;

        var final = await Kv.GetAsync(table, "claps");
        Assert.Equal(1000, final!.Value.GetInt64());
        Assert.All(totals, seen => Assert.Equal(seen.Order(), seen)); // each caller sees its total grow
        // At most one statement per 25 ms window (+1 for the window in flight), whatever the clap rate.
        var bound = (elapsed.TotalSeconds * 40) + 2;
        Assert.True(Interlocked.Read(ref statements) <= bound, $"{statements} statements in {elapsed.TotalSeconds:0.0} s (bound {bound:0})");
        Assert.True(Interlocked.Read(ref statements) < 1000, "increments must be merged");
        await reader.WaitForRevisionAsync(final.Revision);
        Assert.Equal("1000", reader.LiveValues()["claps"]);
        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_hot_table_gets_a_bounded_number_of_frames_and_ends_with_the_latest_value()
    {
        var table = NewTable();
        await using var client = await KvTestClient.ConnectAsync(fx.Host.BaseUrl);
        await client.SubscribeAsync(table);
        var started = DateTime.UtcNow;
        KvEntry last = null!;
        for (var i = 1; i <= 150; i++)
        {
            last = await Kv.PutAsync(table, "hot", i);
        }

        await client.WaitForRevisionAsync(last.Revision);
        var elapsed = DateTime.UtcNow - started;

        Assert.Equal("150", client.LiveValues()["hot"]);
        Assert.True(client.Frames.Count <= (elapsed.TotalSeconds * 10) + 2, $"{client.Frames.Count} frames in {elapsed.TotalSeconds:0.0} s");
        var revisions = client.Frames.Select(f => f.Revision).ToList();
        Assert.Equal(revisions.Order(), revisions); // never an older frame after a newer one
    }
}
