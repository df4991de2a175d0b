using KvStore.Cdc;
using KvStore.Realtime.Diagnostics;

namespace KvStore.Realtime.Publishing;

/// <summary>
/// Turns a table's committed batches into <c>changes</c> frames: at most one per interval per table, and
/// the next one only once the previous one has been delivered to every member on this node (its send
/// task completed). Batches arriving meanwhile are merged into the table's pending frame (latest change
/// per key, whole transactions only), so the frame rate follows what the node can deliver: a busy node
/// sends fewer, fresher frames instead of queuing stale ones. Frames of one table go out in revision
/// order and a frame never holds an older value of a key than an earlier frame, so clients can keep
/// de-duplicating by table revision; resuming from a frame's revision is exact. A frame also says which
/// revision it follows (<see cref="TableFrame.After"/>: the one before the oldest change it covers,
/// merged-away changes included), so a client holding less knows it missed something and resumes.
/// </summary>
internal sealed class TableFramer(TimeSpan interval, TimeProvider time, Func<TableFrame, Task> send)
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
                state = new TableState(table);
                _tables[table] = state;
            }

            if (state.Pending is null && !state.InFlight && DueIn(state, now) <= TimeSpan.Zero)
            {
                SendLocked(state, new TableFrame(table, changes, FirstRevision(changes) - 1, [ack]), now);
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
            FlushOrScheduleLocked(state, now);
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
                if (state.Pending is null && !state.InFlight && time.GetElapsedTime(state.LastSent, now) > interval * 4)
                {
                    _tables.Remove(table);
                }
            }
        }
    }

    private TimeSpan DueIn(TableState state, long now) =>
        state.LastSent == 0 ? TimeSpan.Zero : interval - time.GetElapsedTime(state.LastSent, now);

    /// <summary>Sends the pending frame if the table may send now, else makes sure it will be sent when it may.</summary>
    private void FlushOrScheduleLocked(TableState state, long now)
    {
        if (state.Pending is not { Count: > 0 } pending || state.InFlight)
        {
            // The completion of the frame in flight flushes the pending one.
            return;
        }

        var dueIn = DueIn(state, now);
        if (dueIn <= TimeSpan.Zero)
        {
            var frame = new TableFrame(state.Table, pending.Values.ToList(), state.PendingFirst - 1, state.Acks.ToList());
            state.Pending = null;
            state.PendingFirst = long.MaxValue;
            state.Acks.Clear();
            SendLocked(state, frame, now);
        }
        else if (!state.FlushScheduled)
        {
            state.FlushScheduled = true;
            _ = FlushLaterAsync(state, dueIn);
        }
    }

    private void SendLocked(TableState state, TableFrame frame, long now)
    {
        state.LastSent = now;
        state.InFlight = true;
        // Sending under the lock keeps this table's frames in order; the send itself only queues.
        var sent = send(frame);
        if (sent.IsCompleted)
        {
            state.InFlight = false;
        }
        else
        {
            _ = CompleteAsync(state, sent);
        }
    }

    private async Task CompleteAsync(TableState state, Task sent)
    {
        try
        {
            await sent.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The sender reports its own failures; the table must go on either way.
        }

        lock (_gate)
        {
            state.InFlight = false;
            FlushOrScheduleLocked(state, time.GetTimestamp());
        }
    }

    private async Task FlushLaterAsync(TableState state, TimeSpan delay)
    {
        await Task.Delay(delay, time).ConfigureAwait(false);
        lock (_gate)
        {
            state.FlushScheduled = false;
            FlushOrScheduleLocked(state, time.GetTimestamp());
        }
    }

    // Hand-deleted rows carry an old revision; counting them only lowers After (no false gap).
    private static long FirstRevision(List<KvChange> changes) => changes.Min(c => c.Revision);

    private sealed class TableState(string table)
    {
        public string Table { get; } = table;
        public long LastSent { get; set; }
        public bool InFlight { get; set; }
        public Dictionary<string, KvChange>? Pending { get; set; }
        public long PendingFirst { get; set; } = long.MaxValue;
        public List<AckTracker.Entry> Acks { get; } = [];
        public bool FlushScheduled { get; set; }
    }
}

/// <summary>One <c>changes</c> frame of a table: its changes (any order), the revision it follows, and the batches it completes.</summary>
internal sealed record TableFrame(string Table, IReadOnlyList<KvChange> Changes, long After, IReadOnlyList<AckTracker.Entry> Acks);
