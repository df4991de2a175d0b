using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace KvStore.Realtime.Snapshots;

/// <summary>
/// The recent state of busy tables, kept in memory so that many subscribes of one table (an article's
/// readers arriving, a reconnect storm after a node restart) are answered without a database read each.
/// The database stays the source of truth: a table's cache is seeded only by a subscribe's own database
/// read and then follows the frames this node publishes; whenever it cannot be sure it is exact, it is
/// dropped and subscribes read the database again.
/// </summary>
/// <remarks>
/// <para>
/// A table's cache is a compacted change log: the latest change per key (tombstones included) of every
/// change after <see cref="TableCache.Base"/>, up to <see cref="TableCache.Top"/>, and, when
/// <see cref="TableCache.Complete"/>, every live key of the table. So it answers exactly what the
/// database answers: a resume from <c>R</c> with <c>Base ≤ R ≤ Top</c> gets the entries changed after
/// <c>R</c> (the database's "changes after R" is the latest row per key too), and a fresh subscribe of
/// a complete cache gets its live entries.
/// </para>
/// <para>
/// Why it is exact. A frame is recorded here before it is handed to the fan-out, and a subscriber joins
/// the table's group before it reads the cache, so a frame it does not find here reaches it through the
/// group. A database read records the frames published while it runs; a change committed after the
/// read's snapshot is published after the read began, so the read's rows plus those frames hold every
/// change after the read's <c>R</c>. A frame whose <c>after</c> lies above <c>Top</c> (a change this
/// node never saw) drops the cache, and a resynchronized change stream (which skipped changes) clears
/// every cache and accepts no read begun before it had its new position.
/// </para>
/// <para>
/// Bounds: only tables with at least <see cref="MinSubscribers"/> subscribers on this node get a cache;
/// one holds at most <see cref="MaxEntriesPerTable"/> entries and <see cref="MaxBytesPerTable"/> bytes,
/// all together at most <see cref="KvRealtimeOptions.HotTableCacheBytes"/>; a cache unused for
/// <see cref="IdleLifetime"/> goes away. Only where this process publishes the changes of its own
/// subscribers (no backplane).
/// </para>
/// </remarks>
internal sealed class HotTableCache
{
    public const int MinSubscribers = 4;
    public const int MaxEntriesPerTable = 2000;
    public const long MaxBytesPerTable = 2L * 1024 * 1024;
    public static readonly TimeSpan IdleLifetime = TimeSpan.FromMinutes(2);

    private const int EntryOverhead = 160;
    private const int MaxPublishedFrames = 1000;

    private readonly Dictionary<string, TableCache> _tables = new(StringComparer.Ordinal);
    private readonly object _gate = new();
    private readonly TimeProvider _time;
    private readonly long _budget;
    private long _bytes;
    private long _generation;
    private bool _suspended;

    public HotTableCache(TimeProvider time, long budget)
    {
        _time = time;
        _budget = budget;
        Enabled = budget > 0;
    }

    /// <summary>False when configured off, or where this process does not publish its subscribers' changes.</summary>
    public bool Enabled { get; set; }

    /// <summary>Tables with a usable cache (for tests and metrics).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _tables.Values.Count(t => t.Valid);
            }
        }
    }

    /// <summary>Bytes held by all caches (an estimate: keys, raw JSON values and per-entry overhead).</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>Records a frame about to be published: every change of <paramref name="table"/> in (<paramref name="after"/>, <paramref name="revision"/>].</summary>
    public void Record(string table, IReadOnlyList<KvEntryDto> changes, long after, long revision)
    {
        TableCache? cache;
        lock (_gate)
        {
            if (!_tables.TryGetValue(table, out cache))
            {
                return;
            }
        }

        lock (cache)
        {
            if (cache.Generation != Volatile.Read(ref _generation))
            {
                return;
            }

            if (cache.Readers > 0)
            {
                if (cache.Published.Count >= MaxPublishedFrames)
                {
                    // Reads that overlap for ever (a table whose reads never seed) must not hold every
                    // frame: forget them, and with them the reads that needed them.
                    cache.Published.Clear();
                    cache.ForgottenBefore = cache.NextFrame;
                }

                cache.Published.Add(new Frame(cache.NextFrame++, changes, after, revision));
            }

            if (cache.Valid && !Apply(cache, changes, after, revision))
            {
                DropLocked(cache);
            }
        }
    }

    /// <summary>
    /// Answers a subscribe from memory when the table's cache can: <paramref name="resumeFrom"/> within
    /// its history, or a fresh snapshot of a complete cache. Null when the database must answer.
    /// </summary>
    public SubscribeResult? TryServe(string table, long? resumeFrom, int pageSize, int subscribers)
    {
        TableCache? cache;
        lock (_gate)
        {
            if (!Enabled || _suspended || !_tables.TryGetValue(table, out cache))
            {
                return null;
            }
        }

        lock (cache)
        {
            if (!cache.Valid || cache.Generation != Volatile.Read(ref _generation))
            {
                return null;
            }

            cache.LastUsed = _time.GetTimestamp();
            if (resumeFrom is { } from)
            {
                if (from < cache.Base || from > cache.Top)
                {
                    return null;
                }

                var changes = cache.Entries.Values.Where(e => e.Revision > from).OrderBy(e => e.Revision).ToList();
                var more = changes.Count > pageSize;
                if (more)
                {
                    changes.RemoveRange(pageSize, changes.Count - pageSize);
                }

                var revision = more ? changes[^1].Revision : cache.Top;
                return new SubscribeResult(table, revision, changes, !more, false, "changes", null, more ? revision : null, subscribers);
            }

            if (!cache.Complete)
            {
                return null;
            }

            var now = _time.GetUtcNow();
            var live = cache.Entries.Values
                .Where(e => e.Op == "put" && (e.ExpiresAt is null || e.ExpiresAt > now))
                .OrderBy(e => e.Key, Utf8Order.Instance)
                .ToList();
            var next = (string?)null;
            if (live.Count > pageSize)
            {
                live.RemoveRange(pageSize, live.Count - pageSize);
                next = live[^1].Key;
            }

            return new SubscribeResult(table, cache.Top, live, next is null, false, "snapshot", next, null, subscribers);
        }
    }

    /// <summary>
    /// Called before a subscribe reads the database: starts recording the frames published meanwhile, so
    /// the read can seed (or extend) the table's cache. Null when the table gets no cache.
    /// </summary>
    public ReadTicket? BeginRead(string table, int subscribers)
    {
        lock (_gate)
        {
            if (!Enabled || _suspended)
            {
                return null;
            }

            if (!_tables.TryGetValue(table, out var cache))
            {
                if (subscribers < MinSubscribers || _bytes >= _budget)
                {
                    return null;
                }

                cache = new TableCache(_generation, _time.GetTimestamp());
                _tables[table] = cache;
            }

            lock (cache)
            {
                if (cache.Generation != _generation && cache.Readers == 0)
                {
                    // Dropped (a gap, a size bound): start over from this read.
                    cache.Generation = _generation;
                    cache.Published.Clear();
                    cache.ForgottenBefore = cache.NextFrame;
                }

                cache.Readers++;
                return new ReadTicket(table, cache, _generation, cache.NextFrame);
            }
        }
    }

    /// <summary>
    /// Ends a read begun with <see cref="BeginRead"/>. <paramref name="read"/> is what the database
    /// answered, when it can seed the cache (a whole snapshot, or every change after a revision), else null.
    /// </summary>
    public void EndRead(ReadTicket ticket, DatabaseRead? read)
    {
        var cache = ticket.Cache;
        lock (cache)
        {
            cache.Readers--;
            cache.LastUsed = _time.GetTimestamp();
            if (read is not null && ticket.Generation == Volatile.Read(ref _generation) && cache.Generation == ticket.Generation &&
                ticket.FirstFrame >= cache.ForgottenBefore)
            {
                Seed(cache, read, ticket.FirstFrame);
            }

            if (cache.Readers == 0)
            {
                cache.Published.Clear();
            }
        }
    }

    /// <summary>
    /// The change stream skipped changes (resynchronized at "now"): drop every cache, and accept no read
    /// until <see cref="Resume"/> (called once the stream has its new position).
    /// </summary>
    public void Suspend()
    {
        lock (_gate)
        {
            _suspended = true;
            ClearLocked();
        }
    }

    /// <summary>The change stream has its new position: reads begun from now on may seed caches again.</summary>
    public void Resume()
    {
        lock (_gate)
        {
            ClearLocked();
            _suspended = false;
        }
    }

    /// <summary>Drops caches nobody used for <see cref="IdleLifetime"/>.</summary>
    public void Sweep()
    {
        var now = _time.GetTimestamp();
        lock (_gate)
        {
            foreach (var (table, cache) in _tables.ToList())
            {
                lock (cache)
                {
                    if (cache.Readers == 0 && _time.GetElapsedTime(cache.LastUsed, now) > IdleLifetime)
                    {
                        DropLocked(cache);
                        _tables.Remove(table);
                    }
                }
            }
        }
    }

    private void ClearLocked()
    {
        Interlocked.Increment(ref _generation);
        foreach (var cache in _tables.Values)
        {
            lock (cache)
            {
                DropLocked(cache);
            }
        }

        _tables.Clear();
    }

    private void Seed(TableCache cache, DatabaseRead read, long firstFrame)
    {
        if (cache.Valid && read.Base > cache.Top)
        {
            // The read starts above what the cache holds: together they would miss (Top, Base].
            return;
        }

        if (!cache.Valid)
        {
            cache.Entries.Clear();
            cache.Base = read.Base;
            cache.Top = read.Revision;
            cache.Complete = read.Complete;
            cache.Valid = true;
        }
        else if (read.Base < cache.Base || read.Complete)
        {
            // A wider read: its rows and the frames since it began cover everything after its base.
            cache.Base = Math.Min(cache.Base, read.Base);
            cache.Complete |= read.Complete;
        }

        foreach (var entry in read.Entries)
        {
            Put(cache, entry);
        }

        cache.Top = Math.Max(cache.Top, read.Revision);
        foreach (var frame in cache.Published)
        {
            if (frame.Sequence >= firstFrame && !Apply(cache, frame.Changes, frame.After, frame.Revision))
            {
                DropLocked(cache);
                return;
            }
        }

        if (cache.Entries.Count > MaxEntriesPerTable || cache.Bytes > MaxBytesPerTable)
        {
            DropLocked(cache);
        }
    }

    /// <summary>Applies a published frame; false when the cache can no longer be exact.</summary>
    private bool Apply(TableCache cache, IReadOnlyList<KvEntryDto> changes, long after, long revision)
    {
        if (revision <= cache.Top)
        {
            // Already held (published again after a reconnect, or read from the database first).
            foreach (var change in changes)
            {
                Put(cache, change);
            }

            return true;
        }

        if (after > cache.Top)
        {
            // Changes in (Top, after] never reached this node: only the database knows them.
            return false;
        }

        foreach (var change in changes)
        {
            Put(cache, change);
        }

        cache.Top = revision;
        return cache.Entries.Count <= MaxEntriesPerTable && cache.Bytes <= MaxBytesPerTable && Interlocked.Read(ref _bytes) <= _budget;
    }

    private void Put(TableCache cache, KvEntryDto entry)
    {
        var held = cache.Entries.TryGetValue(entry.Key, out var existing) ? existing : null;
        if (held is not null && held.Revision > entry.Revision)
        {
            return;
        }

        var before = held is null ? 0 : Size(held);
        if (entry.Unversioned == true)
        {
            // A row deleted by hand: the database has no row for it any more, so neither does the cache.
            if (held is not null && held.Revision <= entry.Revision)
            {
                cache.Entries.Remove(entry.Key);
                Account(cache, -before);
            }

            return;
        }

        cache.Entries[entry.Key] = entry;
        Account(cache, Size(entry) - before);
    }

    private void Account(TableCache cache, long delta)
    {
        cache.Bytes += delta;
        Interlocked.Add(ref _bytes, delta);
    }

    private void DropLocked(TableCache cache)
    {
        Interlocked.Add(ref _bytes, -cache.Bytes);
        cache.Bytes = 0;
        cache.Entries.Clear();
        cache.Valid = false;
        cache.Complete = false;
        cache.Generation = -1;
    }

    private static long Size(KvEntryDto entry) =>
        EntryOverhead + (entry.Key.Length * 2) + (entry.Value is { } value ? JsonMarshal.GetRawUtf8Value(value).Length : 0);

    /// <summary>A subscribe's database read in progress (<see cref="BeginRead"/>).</summary>
    internal sealed record ReadTicket(string Table, TableCache Cache, long Generation, long FirstFrame);

    /// <summary>
    /// What a subscribe read from the database: the entries changed after <paramref name="Base"/> up to
    /// the table's <paramref name="Revision"/> (all of them), and whether they are every live key too
    /// (<paramref name="Complete"/>: a whole snapshot, where <paramref name="Base"/> is its revision).
    /// </summary>
    internal sealed record DatabaseRead(long Base, long Revision, bool Complete, IReadOnlyList<KvEntryDto> Entries);

    internal sealed record Frame(long Sequence, IReadOnlyList<KvEntryDto> Changes, long After, long Revision);

    internal sealed class TableCache(long generation, long now)
    {
        public long Generation { get; set; } = generation;
        public Dictionary<string, KvEntryDto> Entries { get; } = new(StringComparer.Ordinal);
        public List<Frame> Published { get; } = [];
        public long NextFrame { get; set; }
        public long ForgottenBefore { get; set; }
        public int Readers { get; set; }
        public bool Valid { get; set; }
        public bool Complete { get; set; }
        public long Base { get; set; }
        public long Top { get; set; }
        public long Bytes { get; set; }
        public long LastUsed { get; set; } = now;
    }

    /// <summary>Keys in the database's order: <c>VARBINARY</c>, so by their UTF-8 bytes.</summary>
    private sealed class Utf8Order : IComparer<string>
    {
        public static readonly Utf8Order Instance = new();

        public int Compare(string? x, string? y)
        {
            if (x is null || y is null)
            {
                return string.CompareOrdinal(x, y);
            }

            var a = Encoding.UTF8.GetBytes(x);
            var b = Encoding.UTF8.GetBytes(y);
            return a.AsSpan().SequenceCompareTo(b);
        }
    }
}
