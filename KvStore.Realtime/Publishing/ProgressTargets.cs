using KvStore.Realtime.Hubs;

namespace KvStore.Realtime.Publishing;

/// <summary>
/// Which tables get a <c>progress</c> message, and with which revision (the highest one published).
/// <list type="bullet">
/// <item>In-process (no backplane) the publisher sees this node's subscriptions: every subscribed table
/// gets progress every interval, however long it is idle (<see cref="KvSubscriptions"/> keeps the revision).</item>
/// <item>With the backplane the subscribers are on other nodes and unknown here, so progress goes to the
/// tables that changed recently: a table gets it until it has been quiet for <see cref="IdleIntervals"/>
/// progress intervals, and at most <see cref="MaxTables"/> tables are tracked (the least recently changed
/// are dropped). A subscriber of a table quiet for longer already holds the last frame's revision; what
/// progress adds after a burst is that a frame lost on the way (pub/sub delivers at most once) shows up
/// as a progress revision above the one held.</item>
/// </list>
/// </summary>
internal sealed class ProgressTargets(KvSubscriptions subscriptions, KvRealtimeOptions options)
{
    public const int IdleIntervals = 4;
    public const int MaxTables = 10_000;

    private readonly Dictionary<string, (long Revision, long ChangedAt)> _recent = new(StringComparer.Ordinal);
    private readonly object _gate = new();

    /// <summary>Records that every change of <paramref name="table"/> up to <paramref name="revision"/> has been published.</summary>
    public void Observe(string table, long revision)
    {
        if (!options.Backplane)
        {
            subscriptions.ObserveRevision(table, revision);
            return;
        }

        var now = options.TimeProvider.GetTimestamp();
        lock (_gate)
        {
            var known = _recent.TryGetValue(table, out var entry) ? entry.Revision : 0;
            _recent[table] = (Math.Max(known, revision), now);
            if (_recent.Count > MaxTables)
            {
                // Drop a tenth at once so the sort is paid rarely.
                foreach (var (stale, _) in _recent.OrderBy(kv => kv.Value.ChangedAt).Take(_recent.Count - (MaxTables * 9 / 10)).ToList())
                {
                    _recent.Remove(stale);
                }
            }
        }
    }

    /// <summary>The tables to send progress to now, with their revision.</summary>
    public IReadOnlyList<(string Table, long Revision)> Due()
    {
        if (!options.Backplane)
        {
            return subscriptions.Tables()
                .Select(t => (t.Table, Revision: subscriptions.KnownRevision(t.Table)))
                .Where(t => t.Revision is not null)
                .Select(t => (t.Table, t.Revision!.Value))
                .ToList();
        }

        var now = options.TimeProvider.GetTimestamp();
        var idle = options.ProgressInterval * IdleIntervals;
        lock (_gate)
        {
            foreach (var (table, entry) in _recent.ToList())
            {
                if (options.TimeProvider.GetElapsedTime(entry.ChangedAt, now) > idle)
                {
                    _recent.Remove(table);
                }
            }

            return _recent.Select(kv => (kv.Key, kv.Value.Revision)).ToList();
        }
    }
}
