using KvStore.Realtime.Hubs;
using KvStore.Realtime.Publishing;
using Microsoft.Extensions.Time.Testing;

namespace KvStore.Realtime.Tests;

public sealed class ProgressTargetsTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly KvSubscriptions _subscriptions = new();

    [Fact]
    public void In_process_progress_covers_the_subscribed_tables_only_however_long_they_are_idle()
    {
        var targets = new ProgressTargets(_subscriptions, new KvRealtimeOptions { TimeProvider = _time });
        Assert.True(_subscriptions.TryAdd("c1", "watched", 10, out _, out _));
        targets.Observe("watched", 3);
        targets.Observe("unwatched", 4);
        _time.Advance(TimeSpan.FromHours(1));

        Assert.Equal([("watched", 3L)], targets.Due());
    }

    [Fact]
    public void With_a_backplane_progress_covers_tables_changed_in_the_last_four_intervals()
    {
        var targets = Backplane();
        targets.Observe("a", 5);
        Assert.Equal([("a", 5L)], targets.Due());

        _time.Advance(TimeSpan.FromSeconds(3));
        targets.Observe("b", 7);
        targets.Observe("b", 6); // an older frame never lowers the revision
        _time.Advance(TimeSpan.FromSeconds(2));

        Assert.Equal([("b", 7L)], targets.Due());
    }

    [Fact]
    public void With_a_backplane_the_least_recently_changed_tables_are_dropped_beyond_the_cap()
    {
        var targets = Backplane();
        for (var i = 0; i <= ProgressTargets.MaxTables; i++)
        {
            targets.Observe("t" + i, i + 1);
            _time.Advance(TimeSpan.FromTicks(1));
        }

        var due = targets.Due().Select(t => t.Table).ToHashSet(StringComparer.Ordinal);
        Assert.InRange(due.Count, ProgressTargets.MaxTables * 9 / 10, ProgressTargets.MaxTables);
        Assert.Contains("t" + ProgressTargets.MaxTables, due);
        Assert.DoesNotContain("t0", due);
    }

    private ProgressTargets Backplane() =>
        new(_subscriptions, new KvRealtimeOptions { TimeProvider = _time, ProgressInterval = TimeSpan.FromSeconds(1), Backplane = true });
}
