namespace KvStore.Storage;

/// <summary>
/// Client-side group commit for unconditional puts. Up to <see cref="MaxInFlight"/> puts run on their
/// own, exactly as without coalescing (so a lone caller pays no extra latency); puts that arrive while
/// all those slots are busy queue, and whichever slot frees first takes the queue as one group
/// transaction (<see cref="KvSql.LockTablesSkipLocked"/>). One commit then carries many puts, which is
/// what lets KvStore keep up with a plain autocommit upsert under concurrency although every put also
/// writes its table's revision row.
/// </summary>
internal sealed class PutCoalescer
{
    /// <summary>Transactions of unconditional puts (single or group) one client runs at once before it starts grouping.</summary>
    internal const int MaxInFlight = 2;

    /// <summary>
    /// A put running on its own holds its slot at most this long. One blocked behind another writer's
    /// lock (the lone path waits for locks; groups never do) then stops holding back the queue, so puts
    /// to other tables wait for it this long at most.
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
    private readonly TimeProvider _time;
    private readonly Queue<PendingPut> _queue = new();
    private readonly Lock _lock = new();
    private int _inFlight;

    /// <param name="runOne">Runs one put on its own (the ordinary path, with its retries).</param>
    /// <param name="runGroup">Runs claimed puts as a group and completes every one of them; never throws.</param>
    /// <param name="time">Clock of the <see cref="SlotLease"/>.</param>
    public PutCoalescer(Func<PendingPut, CancellationToken, Task<KvEntry>> runOne, Func<List<PendingPut>, Task> runGroup, TimeProvider time)
    {
        _runOne = runOne;
        _runGroup = runGroup;
        _time = time;
    }

    public Task<KvEntry> PutAsync(PendingPut put, CancellationToken cancellationToken)
    {
        if (put.Value.Length > MaxCoalescedValueBytes)
        {
            return _runOne(put, cancellationToken);
        }

        lock (_lock)
        {
            if (_inFlight >= MaxInFlight)
            {
                cancellationToken.ThrowIfCancellationRequested();
                _queue.Enqueue(put);
                put.WatchCancellation(cancellationToken);
                return put.Completion.Task;
            }

            _inFlight++;
        }

        return RunInSlotAsync(put, cancellationToken);
    }

    private async Task<KvEntry> RunInSlotAsync(PendingPut put, CancellationToken cancellationToken)
    {
        var slot = new Slot(this);
        using var lease = _time.CreateTimer(static state => ((Slot)state!).Release(), slot, SlotLease, Timeout.InfiniteTimeSpan);
        try
        {
            return await _runOne(put, cancellationToken).ConfigureAwait(false);
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
internal sealed class PendingPut(string table, string key, byte[] keyBytes, byte[] value, System.Text.Json.JsonElement element, TimeSpan? ttl)
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

    /// <summary>The revision a put group gave this put (before it committed).</summary>
    public long Revision { get; set; }

    /// <summary>When the caller started the put (<see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>), for the duration metric.</summary>
    public long Started { get; } = System.Diagnostics.Stopwatch.GetTimestamp();

    public TaskCompletionSource<KvEntry> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Cancellation counts only while the put is queued: once claimed it runs to its end, like a put whose COMMIT was sent.</summary>
    public void WatchCancellation(CancellationToken cancellationToken)
    {
        if (cancellationToken.CanBeCanceled)
        {
            _cancellation = cancellationToken.Register(static (state, token) =>
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
}
