using KvStore.Realtime.Snapshots;
using Microsoft.Extensions.Time.Testing;

namespace KvStore.Realtime.Tests;

public sealed class HotTableCacheTests
{
    private const int Hot = HotTableCache.MinSubscribers;
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-12-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private readonly HotTableCache _cache;

    public HotTableCacheTests() => _cache = new HotTableCache(_time, 64L * 1024 * 1024);

    [Fact]
    public void A_table_with_few_subscribers_gets_no_cache()
    {
        Assert.Null(_cache.BeginRead("t", Hot - 1));
        Assert.Null(_cache.TryServe("t", null, 500, 1));
    }

    [Fact]
    public void A_whole_snapshot_then_published_frames_answer_snapshots_and_resumes_like_the_database()
    {
        Seed("t", new HotTableCache.DatabaseRead(5, 5, true, [Entry("a", 3), Entry("b", 5)]));
        _cache.Record("t", [Entry("a", 6), Tombstone("b", 7)], after: 5, revision: 7);

        var snapshot = _cache.TryServe("t", null, 500, Hot)!;
        Assert.Equal(("snapshot", 7L, true), (snapshot.Mode, snapshot.Revision, snapshot.Complete));
        Assert.Equal([("a", 6L)], snapshot.Entries.Select(e => (e.Key, e.Revision)));

        var resume = _cache.TryServe("t", 5, 500, Hot)!;
        Assert.Equal(("changes", 7L, false), (resume.Mode, resume.Revision, resume.Reset));
        Assert.Equal([("a", 6L, "put"), ("b", 7L, "delete")], resume.Entries.Select(e => (e.Key, e.Revision, e.Op)));

        // Below its base the cache does not know the history: the database answers (exact or reset).
        Assert.Null(_cache.TryServe("t", 4, 500, Hot));
        // Above its top: a revision this node has not published; the database decides.
        Assert.Null(_cache.TryServe("t", 8, 500, Hot));
    }

    [Fact]
    public void Snapshots_leave_out_expired_entries_and_keep_the_key_order_of_the_database()
    {
        var soon = _time.GetUtcNow().AddSeconds(1);
        Seed("t", new HotTableCache.DatabaseRead(3, 3, true, [Entry("b", 1), Entry("a", 2), Entry("\uE000", 3) with { ExpiresAt = soon }, Entry("\U0001F600", 3)]));
        // UTF-8 byte order: U+E000 (EE 80 80) sorts before U+1F600 (F0 ...), unlike UTF-16 order.
        Assert.Equal(["a", "b", "\uE000", "\U0001F600"], _cache.TryServe("t", null, 500, Hot)!.Entries.Select(e => e.Key));

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(["a", "b", "\U0001F600"], _cache.TryServe("t", null, 500, Hot)!.Entries.Select(e => e.Key));
    }

    [Fact]
    public void Pages_beyond_the_inline_limit_continue_like_the_database()
    {
        Seed("t", new HotTableCache.DatabaseRead(0, 3, true, [Entry("a", 1), Entry("b", 2), Entry("c", 3)]));
        var snapshot = _cache.TryServe("t", null, 2, Hot)!;
        Assert.Equal((false, "b"), (snapshot.Complete, snapshot.ContinueAfterKey));

        var resume = _cache.TryServe("t", 0, 2, Hot)!;
        Assert.Equal((false, 2L, 2L), (resume.Complete, resume.Revision, resume.ContinueAfterRevision));
    }

    [Fact]
    public void Frames_published_while_the_seeding_read_runs_are_part_of_the_cache()
    {
        var ticket = _cache.BeginRead("t", Hot)!;
        _cache.Record("t", [Entry("a", 4)], after: 3, revision: 4);   // committed after the read's snapshot
        _cache.EndRead(ticket, new HotTableCache.DatabaseRead(3, 3, true, [Entry("a", 3)]));

        var snapshot = _cache.TryServe("t", null, 500, Hot)!;
        Assert.Equal([("a", 4L)], snapshot.Entries.Select(e => (e.Key, e.Revision)));
        Assert.Equal(4, snapshot.Revision);
    }

    [Fact]
    public void A_frame_that_follows_a_revision_the_cache_never_saw_drops_it()
    {
        Seed("t", new HotTableCache.DatabaseRead(2, 2, true, [Entry("a", 2)]));
        _cache.Record("t", [Entry("a", 5)], after: 4, revision: 5);
        Assert.Null(_cache.TryServe("t", 2, 500, Hot));
        Assert.Equal(0, _cache.Bytes);
    }

    [Fact]
    public void A_resynchronized_stream_clears_every_cache_and_refuses_reads_begun_before_it_has_a_position()
    {
        Seed("t", new HotTableCache.DatabaseRead(2, 2, true, [Entry("a", 2)]));
        var before = _cache.BeginRead("u", Hot)!;

        _cache.Suspend();
        Assert.Null(_cache.TryServe("t", null, 500, Hot));
        Assert.Null(_cache.BeginRead("t", Hot));
        _cache.Resume();

        _cache.EndRead(before, new HotTableCache.DatabaseRead(1, 1, true, [Entry("x", 1)]));
        Assert.Null(_cache.TryServe("u", null, 500, Hot));
        Assert.Null(_cache.TryServe("t", null, 500, Hot));
        Seed("t", new HotTableCache.DatabaseRead(9, 9, true, [Entry("a", 9)]));
        Assert.Equal(9, _cache.TryServe("t", null, 500, Hot)!.Revision);
    }

    [Fact]
    public void A_read_that_starts_above_the_cache_does_not_widen_it()
    {
        Seed("t", new HotTableCache.DatabaseRead(2, 2, false, [Entry("a", 2)]));
        // The database answered changes after 6 up to 8; (2, 6] is in neither.
        Seed("t", new HotTableCache.DatabaseRead(6, 8, false, [Entry("c", 8)]));
        var resume = _cache.TryServe("t", 2, 500, Hot)!;
        Assert.Equal(2, resume.Revision);
        Assert.Empty(resume.Entries);
    }

    [Fact]
    public void An_older_resume_read_widens_the_history()
    {
        Seed("t", new HotTableCache.DatabaseRead(5, 5, true, [Entry("a", 5)]));
        Seed("t", new HotTableCache.DatabaseRead(2, 5, false, [Tombstone("b", 3), Entry("a", 5)]));
        var resume = _cache.TryServe("t", 2, 500, Hot)!;
        Assert.Equal([("b", 3L), ("a", 5L)], resume.Entries.Select(e => (e.Key, e.Revision)));
        Assert.Equal(["a"], _cache.TryServe("t", null, 500, Hot)!.Entries.Select(e => e.Key));
    }

    [Fact]
    public void A_row_deleted_by_hand_leaves_the_cache_as_it_left_the_database()
    {
        Seed("t", new HotTableCache.DatabaseRead(2, 2, true, [Entry("a", 1), Entry("b", 2)]));
        _cache.Record("t", [Tombstone("a", 1) with { Unversioned = true }], after: 0, revision: 1);
        Assert.Equal(["b"], _cache.TryServe("t", null, 500, Hot)!.Entries.Select(e => e.Key));
        Assert.Equal(2, _cache.TryServe("t", null, 500, Hot)!.Revision);
    }

    [Fact]
    public void Tables_over_the_per_table_bound_are_not_cached()
    {
        var many = Enumerable.Range(1, HotTableCache.MaxEntriesPerTable + 1).Select(i => Entry("k" + i, i)).ToList();
        Seed("t", new HotTableCache.DatabaseRead(many.Count, many.Count, true, many));
        Assert.Null(_cache.TryServe("t", null, 500, Hot));
        Assert.Equal(0, _cache.Bytes);
    }

    [Fact]
    public void An_unused_cache_goes_away()
    {
        Seed("t", new HotTableCache.DatabaseRead(1, 1, true, [Entry("a", 1)]));
        _time.Advance(HotTableCache.IdleLifetime + TimeSpan.FromSeconds(1));
        _cache.Sweep();
        Assert.Null(_cache.TryServe("t", null, 500, Hot));
        Assert.Equal(0, _cache.Count);
    }

    private void Seed(string table, HotTableCache.DatabaseRead read)
    {
        var ticket = _cache.BeginRead(table, Hot);
        Assert.NotNull(ticket);
        _cache.EndRead(ticket, read);
    }

    private static KvEntryDto Entry(string key, long revision) =>
        new(key, "put", JsonValues.Of(revision.ToString(System.Globalization.CultureInfo.InvariantCulture)), revision, 1, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, null);

    private static KvEntryDto Tombstone(string key, long revision) =>
        new(key, "delete", null, revision, 1, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, null);
}
