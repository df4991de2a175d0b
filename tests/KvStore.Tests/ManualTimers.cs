namespace KvStore.Tests;

/// <summary>
/// A <see cref="TimeProvider"/> whose timers fire only when the test calls <see cref="FireAll"/>; the time
/// itself is the system's. As a client's <see cref="KvStoreOptions.TimeProvider"/> it holds the put
/// slots' 50 ms leases, so the test decides when a slot held by a blocked put passes to the queue.
/// (Retry delays use it too: a test that expects a retry must fire them.)
/// </summary>
internal sealed class ManualTimers : TimeProvider
{
    private readonly List<ManualTimer> _armed = [];
    private readonly Lock _gate = new();

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>Fires every armed timer once, as if its due time had come (periods are not repeated).</summary>
    public void FireAll()
    {
        List<ManualTimer> due;
        lock (_gate)
        {
            due = [.. _armed];
            _armed.Clear();
        }

        foreach (var timer in due)
        {
            timer.Fire();
        }
    }

    private sealed class ManualTimer(ManualTimers owner, TimerCallback callback, object? state) : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (owner._gate)
            {
                owner._armed.Remove(this);
                if (dueTime != Timeout.InfiniteTimeSpan)
                {
                    owner._armed.Add(this);
                }
            }

            return true;
        }

        public void Fire() => callback(state);

        public void Dispose() => Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
