using KvStore.Cdc;
using KvStore.Realtime.Diagnostics;

namespace KvStore.Realtime.Publishing;

/// <summary>
/// Limits <c>changes</c> frames to one per interval per table. A batch for a table that was sent to
/// recently is merged into the table's pending frame (latest change per key, whole transactions only),
/// which is flushed when the interval has passed. Frames of one table go out in revision order and a
/// frame never holds an older value of a key than an earlier frame, so clients can keep de-duplicating
/// by table revision; resuming from a frame's revision is exact. A frame also says which revision it
/// follows (<see cref="TableFrame.After"/>: the one before the oldest change it covers, merged-away
/// changes included), so a client holding less knows it missed something and resumes.
/// </summary>
internal sealed class TableFramer(TimeSpan interval, TimeProvider time, Action<TableFrame> send)
{
    private readonly Dictionary<string, TableState> _tables = new(StringComparer.Ordinal);
    private readonly object _gate = new();

    public void Add(string table, List<KvChange> changes, AckTracker.Entry ack)
    {
        var now = time.GetTimestamp();
        lock (_gate)
        {
            if (!_tables.TryGetValue(table, out var state))
            {
                state = new TableState();
                _tables[table] = state;
            }

            var dueIn = interval - time.GetElapsedTime(state.LastSent, now);
            if (state.Pending is null && (state.LastSent == 0 || dueIn <= TimeSpan.Zero))
            {
                state.LastSent = now;
                // Sending under the lock keeps this table's frames in order; the send itself only queues.
                send(new TableFrame(table, changes, FirstRevision(changes) - 1, [ack]));
                return;
            }

            RealtimeTelemetry.CoalescedBatches.Add(1);
            state.Pending ??= new Dictionary<string, KvChange>(StringComparer.Ordinal);
            state.PendingFirst = Math.Min(state.PendingFirst, FirstRevision(changes));
            foreach (var change in changes)
            {
                if (!state.Pending.TryGetValue(change.Key, out var existing) || existing.Revision < change.Revision)
                {
                    state.Pending[change.Key] = change;
                }
            }

            state.Acks.Add(ack);
            if (!state.FlushScheduled)
            {
                state.FlushScheduled = true;
                _ = FlushLaterAsync(table, state, dueIn > TimeSpan.Zero ? dueIn : TimeSpan.Zero);
            }
        }
    }

    /// <summary>Forgets tables that have been quiet for a while (keeps memory proportional to active tables).</summary>
    public void Sweep()
    {
        lock (_gate)
        {
            var now = time.GetTimestamp();
            foreach (var (table, state) in _tables.ToList())
            {
                if (state.Pending is null && time.GetElapsedTime(state.LastSent, now) > interval * 4)
                {
                    _tables.Remove(table);
                }
            }
        }
    }

    private async Task FlushLaterAsync(string table, TableState state, TimeSpan delay)
    {
        await Task.Delay(delay, time).ConfigureAwait(false);
        lock (_gate)
        {
            state.FlushScheduled = false;
            if (state.Pending is { Count: > 0 } pending)
            {
                var frame = new TableFrame(table, pending.Values.ToList(), state.PendingFirst - 1, state.Acks.ToList());
                state.Pending = null;
                state.PendingFirst = long.MaxValue;
                state.Acks.Clear();
                state.LastSent = time.GetTimestamp();
                send(frame);
            }
        }
    }

    // Hand-deleted rows carry an old revision; counting them only lowers After (no false gap).
    private static long FirstRevision(List<KvChange> changes) => changes.Min(c => c.Revision);

    private sealed class TableState
    {
        public long LastSent { get; set; }
        public Dictionary<string, KvChange>? Pending { get; set; }
        public long PendingFirst { get; set; } = long.MaxValue;
        public List<AckTracker.Entry> Acks { get; } = [];
        public bool FlushScheduled { get; set; }
    }
}

/// <summary>One <c>changes</c> frame of a table: its changes (any order), the revision it follows, and the batches it completes.</summary>
internal sealed record TableFrame(string Table, IReadOnlyList<KvChange> Changes, long After, IReadOnlyList<AckTracker.Entry> Acks);
