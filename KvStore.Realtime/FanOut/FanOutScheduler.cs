using System.Collections.Concurrent;
using System.Diagnostics;
using KvStore.Realtime.Diagnostics;
using Microsoft.AspNetCore.SignalR;

namespace KvStore.Realtime.FanOut;

/// <summary>
/// Writes group messages to the members' connections, on one dedicated thread, a slice of members at a
/// time, and lets the thread pool drain between slices, so that fan-out never crowds out the write path.
/// </summary>
/// <remarks>
/// <para>
/// Every write to a WebSocket connection wakes that connection's send loop on the thread pool: a frame to
/// 10,000 members is 10,000 work items. Queued all at once, they sit in front of everything else the pool
/// has to do, and a hub invocation, an HTTP write or a MySqlConnector round trip arriving behind them
/// waits for all of them; when frames come faster than the node delivers them, that queue grows without
/// bound. So after each slice this thread queues a marker behind the work it caused, and before writing
/// the slice after next it waits until the pool has run that marker (FIFO: everything queued before it
/// has run too, including the writes that arrived meanwhile), and longer while the pool's queue is
/// still long. The pool works on one slice while this thread writes the next; a write waits behind at
/// most two slices of fan-out per hop.
/// </para>
/// <para>
/// The marker waits are the closed loop: a group message completes (its task) only when its last
/// member has been written, and the change publisher sends a table's next frame only after the previous
/// one completed, merging what changed meanwhile (latest value per key). When the node is busy, hot
/// tables get fewer, fresher frames instead of a growing backlog.
/// </para>
/// <para>
/// Jobs run in the order they were queued, so per connection the messages keep the order in which they
/// were sent (frames, progress, resync). Members are looked up when the job runs: a connection that
/// joins a group before that gets the message (a duplicate its revision check drops); one that left does not.
/// </para>
/// </remarks>
internal sealed class FanOutScheduler : IDisposable
{
    private const int MaxDrainRounds = 4;

    private readonly ConcurrentQueue<Job> _jobs = new();
    private readonly ManualResetEventSlim _wake = new(false);
    // Two markers in turn: the pool runs one slice while this thread writes the next.
    private readonly ManualResetEventSlim[] _markers = [new(true), new(true)];
    private int _marker;
    private readonly Func<string, ConcurrentDictionary<string, Outbox>?> _members;
    private readonly Action<Outbox> _full;
    private readonly int _slice;
    private readonly Thread _thread;
    private volatile bool _stopping;
    private int _sinceDrain;

    /// <param name="slice">Members written between two drains of the thread pool.</param>
    /// <param name="members">The members of a group on this node, or null.</param>
    /// <param name="full">Called for a member whose outbox is full (a slow consumer).</param>
    public FanOutScheduler(int slice, Func<string, ConcurrentDictionary<string, Outbox>?> members, Action<Outbox> full)
    {
        _slice = slice;
        _members = members;
        _full = full;
        _thread = new Thread(Run) { IsBackground = true, Name = "KvStore fan-out" };
        _thread.Start();
    }

    /// <summary>Sends <paramref name="message"/> to the group's members (except <paramref name="excluded"/>); the task completes when all were written or queued.</summary>
    public Task SendGroup(string group, SerializedHubMessage message, IReadOnlyList<string>? excluded = null, bool track = true)
    {
        var done = track ? new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) : null;
        Enqueue(new Job(group, null, message, excluded, done));
        return done?.Task ?? Task.CompletedTask;
    }

    /// <summary>
    /// Sends <paramref name="message"/> to one connection, in order with its group messages. It waits in
    /// the connection's outbox (bounded: a full one is a slow consumer) until this thread writes it.
    /// </summary>
    public void SendOne(Outbox outbox, SerializedHubMessage message)
    {
        switch (outbox.Post(message))
        {
            case OutboxResult.Full:
                _full(outbox);
                break;
            case OutboxResult.Posted:
                Enqueue(new Job(null, outbox, null, null, null));
                break;
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Set();
        _markers[0].Set();
        _markers[1].Set();
        _thread.Join(TimeSpan.FromSeconds(5));
        while (_jobs.TryDequeue(out var job))
        {
            job.Done?.TrySetCanceled();
        }
    }

    private void Enqueue(Job job)
    {
        if (_stopping)
        {
            job.Done?.TrySetCanceled();
            return;
        }

        _jobs.Enqueue(job);
        _wake.Set();
    }

    private void Run()
    {
        while (!_stopping)
        {
            if (!_jobs.TryDequeue(out var job))
            {
                _wake.Reset();
                if (_jobs.IsEmpty && !_stopping)
                {
                    _wake.Wait();
                }

                continue;
            }

            try
            {
                var sent = job.Single is { } single ? Flush(single) : SendGroup(job);
                RealtimeTelemetry.FanOutMessages.Add(sent);
                job.Done?.TrySetResult();
            }
            catch (Exception ex)
            {
                // Not expected (every write failure is handled per connection); never let it stop the thread.
                job.Done?.TrySetException(ex);
            }
        }
    }

    private int SendGroup(Job job)
    {
        if (_members(job.Group!) is not { } members)
        {
            return 0;
        }

        var sent = 0;
        foreach (var (id, outbox) in members)
        {
            if (job.Excluded is { } excluded && excluded.Contains(id))
            {
                continue;
            }

            sent += Send(outbox, job.Message!);
        }

        return sent;
    }

    private int Send(Outbox outbox, SerializedHubMessage message)
    {
        if (outbox.Send(message) == OutboxResult.Full)
        {
            _full(outbox);
        }

        Sliced();
        return 1;
    }

    private int Flush(Outbox outbox)
    {
        outbox.Flush();
        Sliced();
        return 1;
    }

    private void Sliced()
    {
        if (++_sinceDrain >= _slice)
        {
            Drain();
        }
    }

    /// <summary>
    /// Queues a marker behind the slice just written, then waits until the pool has run the marker of the
    /// slice before (and longer while its queue stays long): the pool always has the last slice to work
    /// on while this thread writes the next, and never more than two slices of fan-out in its queue.
    /// </summary>
    private void Drain()
    {
        _sinceDrain = 0;
        var started = Stopwatch.GetTimestamp();
        var current = _markers[_marker];
        _marker ^= 1;
        var previous = _markers[_marker];
        current.Reset();
        ThreadPool.UnsafeQueueUserWorkItem(static marker => marker.Set(), current, preferLocal: false);
        previous.Wait();
        for (var round = 1; round < MaxDrainRounds && !_stopping && ThreadPool.PendingWorkItemCount > 2 * _slice; round++)
        {
            // Still long (writes and other work arrived meanwhile): let the pool run it first.
            current.Wait();
            current.Reset();
            ThreadPool.UnsafeQueueUserWorkItem(static marker => marker.Set(), current, preferLocal: false);
        }

        RealtimeTelemetry.FanOutDrainWait.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    private readonly record struct Job(string? Group, Outbox? Single, SerializedHubMessage? Message, IReadOnlyList<string>? Excluded, TaskCompletionSource? Done);
}
