namespace KvStore.Storage;

/// <summary>
/// Client-side group commit for unconditional puts. Up to <see cref="MaxInFlight"/> puts run on their
/// own, exactly as without coalescing (so a lone caller pays no extra latency); puts that arrive while
/// all those slots are busy queue, and whichever slot frees first takes the queue as one group
/// transaction (<see cref="KvSql.LockTablesSkipLocked"/>). One commit then carries many puts, which is
/// what lets KvStore keep up with a plain autocommit upsert under concurrency although every put also
/// writes its table's revision row. At most <see cref="KvStoreOptions.MaxQueuedPuts"/> puts wait in the
/// queue; one arriving when it is full is rejected at once.
/// </summary>
internal sealed class PutCoalescer
{
    /// <summary>Transactions of unconditional puts (single or group) one client runs at once before it starts grouping.</summary>
    internal const int MaxInFlight = 2;

    /// <summary>
    /// A put running on its own in a slot (a lone put, or a queued one claimed alone) holds the slot at
    /// most this long. One blocked behind another writer's lock (the lone path waits for locks; groups
    /// never do) then stops holding back the queue, so puts to other tables wait for it this long at most.
    /// </summary>
    internal static readonly TimeSpan SlotLease = TimeSpan.FromMilliseconds(50);

    /// <summary>Most puts in one group transaction.</summary>
    internal const int MaxGroupPuts = 64;

    /// <summary>Most value bytes in one group, far below any server's max_allowed_packet.</summary>
    internal const int MaxGroupValueBytes = 1024 * 1024;

    /// <summary>Values larger than this always run on their own and never wait for a slot.</summary>
    internal const int MaxCoalescedValueBytes = 64 * 1024;

    private readonly Func<PendingPut, CancellationToken, Task<KvEntry>> _runOne;
    private readonly Func<List<PendingPut>, Task> _runGroup;
    private readonly Func<PendingPut, int, Exception> _reject;
    private readonly TimeProvider _time;
    private readonly int _maxQueued;
    private readonly Queue<PendingPut> _queue = new();
    private readonly Lock _lock = new();
    private int _inFlight;

    /// <param name="runOne">Runs one put on its own (the ordinary path, with its retries).</param>
    /// <param name="runGroup">Runs claimed puts (at least two) as a group and completes every one of them; never throws.</param>
    /// <param name="reject">Reports a put refused because the queue holds <paramref name="maxQueued"/> puts; returns what its caller gets.</param>
    /// <param name="time">Clock of the <see cref="SlotLease"/>.</param>
    /// <param name="maxQueued">Most puts waiting in the queue (<see cref="KvStoreOptions.MaxQueuedPuts"/>).</param>
    public PutCoalescer(
        Func<PendingPut, CancellationToken, Task<KvEntry>> runOne,
        Func<List<PendingPut>, Task> runGroup,
        Func<PendingPut, int, Exception> reject,
        TimeProvider time,
        int maxQueued)
    {
        _runOne = runOne;
        _runGroup = runGroup;
        _reject = reject;
        _time = time;
        _maxQueued = maxQueued;
    }

    /// <summary>
    /// Runs <paramref name="put"/> in a free slot, or queues it (honouring its
    /// <see cref="PendingPut.CancellationToken"/> while it waits); when the queue is full, fails at once
    /// with what the rejection callback returns.
    /// </summary>
    public Task<KvEntry> PutAsync(PendingPut put)
    {
        if (put.Value.Length > MaxCoalescedValueBytes)
        {
            return _runOne(put, put.CancellationToken);
        }

        var full = false;
        lock (_lock)
        {
            if (_inFlight < MaxInFlight)
            {
                _inFlight++;
            }
            else
            {
                put.CancellationToken.ThrowIfCancellationRequested();
                // Cancelled puts count until a drain removes them: the bound is on what the queue holds.
                full = _queue.Count >= _maxQueued;
                if (!full)
                {
                    _queue.Enqueue(put);
                    put.WatchCancellation();
                    return put.Completion.Task;
                }
            }
        }

        // The rejection (it logs and counts) outside the lock.
        return full ? Task.FromException<KvEntry>(_reject(put, _maxQueued)) : RunInSlotAsync(put);
    }

    /// <summary>
    /// Runs one put in a slot this caller already counted in <see cref="_inFlight"/>: the slot goes to a
    /// drain loop when the put ends or after <see cref="SlotLease"/>, whichever comes first.
    /// </summary>
    private async Task<KvEntry> RunInSlotAsync(PendingPut put)
    {
        var slot = new Slot(this);
        using var lease = _time.CreateTimer(static state => ((Slot)state!).Release(), slot, SlotLease, Timeout.InfiniteTimeSpan);
        try
        {
            return await _runOne(put, put.CancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // The caller gets its result now; the slot drains the queue in the background.
            slot.Release();
        }
    }

    private async Task DrainAsync()
    {
        while (true)
        {
            List<PendingPut> group;
            lock (_lock)
            {
                group = TakeGroup();
                if (group.Count == 0)
                {
                    _inFlight--;
                    return;
                }
            }

            if (group.Count == 1)
            {
                // A put claimed alone runs exactly like a lone put in this loop's slot, lease included:
                // it may wait for another writer's row lock (up to innodb_lock_wait_timeout), and the
                // queue, puts to other tables too, must not wait for it longer than for a lone put.
                // The slot passes to it, so this loop ends; the slot's release starts the next one.
                _ = group[0].CompleteWithAsync(RunInSlotAsync(group[0]));
                return;
            }

            await _runGroup(group).ConfigureAwait(false);
        }
    }

    /// <summary>A slot handed over to a drain loop exactly once: when its put ends or its lease runs out.</summary>
    private sealed class Slot(PutCoalescer owner)
    {
        private int _released;

        public void Release()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                // Not inline: the drain runs other callers' puts, so it must not inherit this caller's
                // ExecutionContext (Activity.Current, an ambient TransactionScope) or delay its completion.
                ThreadPool.UnsafeQueueUserWorkItem(static o => _ = ((PutCoalescer)o!).DrainAsync(), owner, preferLocal: false);
            }
        }
    }

    /// <summary>Claims queued puts (skipping cancelled ones) up to the group limits; call under the lock.</summary>
    private List<PendingPut> TakeGroup()
    {
        var group = new List<PendingPut>();
        var keys = new HashSet<(string Table, string Key)>();
        var bytes = 0;
        while (group.Count < MaxGroupPuts && _queue.TryPeek(out var next))
        {
            // A key written twice waits for the next group: a group writes each key once, in one row.
            if ((group.Count > 0 && bytes + next.Value.Length > MaxGroupValueBytes) || keys.Contains((next.Table, next.Key)))
            {
                break;
            }

            _queue.Dequeue();
            // Only claimed puts reserve their key: a cancelled one must not hold back a live put of the
            // same key, or a group could come back empty while puts still wait (and nothing drains them).
            if (next.TryClaim())
            {
                keys.Add((next.Table, next.Key));
                group.Add(next);
                bytes += next.Value.Length;
            }
        }

        return group;
    }
}

/// <summary>An unconditional put waiting in (or claimed from) the <see cref="PutCoalescer"/> queue.</summary>
internal sealed class PendingPut(string table, string key, byte[] keyBytes, byte[] value, System.Text.Json.JsonElement element, TimeSpan? ttl, CancellationToken cancellationToken)
{
    private const int Queued = 0, Claimed = 1, Cancelled = 2;
    private int _state;
    private CancellationTokenRegistration _cancellation;

    public string Table { get; } = table;

    public string Key { get; } = key;

    public byte[] KeyBytes { get; } = keyBytes;

    public byte[] Value { get; } = value;

    public System.Text.Json.JsonElement Element { get; } = element;

    public TimeSpan? Ttl { get; } = ttl;

    /// <summary>
    /// The caller's token. It cancels the put while it is queued, and whenever the put runs on its own
    /// (in a slot, claimed alone, or after its group could not take it), as it would a lone put; a
    /// group transaction runs to its end once claimed.
    /// </summary>
    public CancellationToken CancellationToken { get; } = cancellationToken;

    /// <summary>The revision a put group gave this put (before it committed).</summary>
    public long Revision { get; set; }

    /// <summary>When the caller started the put (<see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>), for the duration metric.</summary>
    public long Started { get; } = System.Diagnostics.Stopwatch.GetTimestamp();

    public TaskCompletionSource<KvEntry> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// While the put is queued, cancellation completes it at once. Once claimed, the group transaction
    /// runs to its end, like a put whose COMMIT was sent; a put that then runs on its own passes
    /// <see cref="CancellationToken"/> on.
    /// </summary>
    public void WatchCancellation()
    {
        if (CancellationToken.CanBeCanceled)
        {
            _cancellation = CancellationToken.Register(static (state, token) =>
            {
                var put = (PendingPut)state!;
                if (Interlocked.CompareExchange(ref put._state, Cancelled, Queued) == Queued)
                {
                    put.Completion.TrySetCanceled(token);
                }
            }, this);
        }
    }

    public bool TryClaim()
    {
        if (Interlocked.CompareExchange(ref _state, Claimed, Queued) != Queued)
        {
            return false;
        }

        _cancellation.Dispose();
        return true;
    }

    /// <summary>Completes the caller of a claimed put with the outcome of <paramref name="run"/>; never throws.</summary>
    public async Task CompleteWithAsync(Task<KvEntry> run)
    {
        try
        {
            Completion.TrySetResult(await run.ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (CancellationToken.IsCancellationRequested)
        {
            Completion.TrySetCanceled(CancellationToken);
        }
        catch (Exception ex)
        {
            Completion.TrySetException(ex);
        }
    }
}
