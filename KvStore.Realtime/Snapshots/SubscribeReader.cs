using KvStore.Realtime.Diagnostics;
using Microsoft.Extensions.Options;

namespace KvStore.Realtime.Snapshots;

/// <summary>
/// Reads what a subscribe answers: the table's snapshot, or the changes after the revision a client
/// resumes from. From the <see cref="HotTableCache"/> when it can answer, else from the database, at
/// most <see cref="KvRealtimeOptions.MaxConcurrentSubscribeReads"/> at a time per node, so a reconnect
/// storm queues here instead of piling onto the database (a read that finished while another waited
/// has usually filled the cache for it).
/// </summary>
internal sealed class SubscribeReader : IDisposable
{
    private readonly IKvStore _kv;
    private readonly HotTableCache _cache;
    private readonly KvRealtimeOptions _options;
    private readonly SemaphoreSlim _reads;
    private long _databaseReads;
    private long _memoryAnswers;

    public SubscribeReader(IKvStore kv, HotTableCache cache, IOptions<KvRealtimeOptions> options)
    {
        _kv = kv;
        _cache = cache;
        _options = options.Value;
        _reads = new SemaphoreSlim(_options.MaxConcurrentSubscribeReads);
    }

    /// <summary>Subscribes this node answered from the database (for tests and diagnostics).</summary>
    public long DatabaseReads => Interlocked.Read(ref _databaseReads);

    /// <summary>Subscribes this node answered from memory.</summary>
    public long MemoryAnswers => Interlocked.Read(ref _memoryAnswers);

    /// <summary>Reads the initial state of a subscription; the connection has joined the table's group already.</summary>
    public async Task<SubscribeResult> ReadAsync(string table, long? resumeFrom, int subscribers, CancellationToken cancellationToken)
    {
        if (Serve(table, resumeFrom, subscribers) is { } cached)
        {
            return cached;
        }

        await _reads.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Serve(table, resumeFrom, subscribers) is { } filled)
            {
                return filled;
            }

            var ticket = _cache.BeginRead(table, subscribers);
            HotTableCache.DatabaseRead? seed = null;
            try
            {
                var (result, read) = await ReadDatabaseAsync(table, resumeFrom, subscribers, cancellationToken).ConfigureAwait(false);
                seed = read;
                return result;
            }
            finally
            {
                if (ticket is not null)
                {
                    _cache.EndRead(ticket, seed);
                }
            }
        }
        finally
        {
            _reads.Release();
        }
    }

    public void Dispose() => _reads.Dispose();

    private SubscribeResult? Serve(string table, long? resumeFrom, int subscribers)
    {
        var result = _cache.TryServe(table, resumeFrom, _options.SnapshotPageSize, subscribers);
        if (result is not null)
        {
            Interlocked.Increment(ref _memoryAnswers);
            Count(result, "memory");
        }

        return result;
    }

    private async Task<(SubscribeResult Result, HotTableCache.DatabaseRead? Seed)> ReadDatabaseAsync(string table, long? resumeFrom, int subscribers, CancellationToken ct)
    {
        Interlocked.Increment(ref _databaseReads);
        var pageSize = _options.SnapshotPageSize;
        SubscribeResult result;
        if (resumeFrom is { } from)
        {
            var changes = await _kv.GetChangesAsync(table, from, pageSize, ct).ConfigureAwait(false);
            // A revision above the table's was never committed here (e.g. lost in a failover): the
            // client's state is not a prefix of ours, so it must start over from a snapshot.
            if (changes.HistoryAvailable && from <= changes.Revision)
            {
                var entries = changes.Changes.Select(KvEntryDto.From).ToList();
                var revision = changes.HasMore ? changes.Changes[^1].Revision : changes.Revision;
                result = new SubscribeResult(table, revision, entries, !changes.HasMore, false, "changes", null, changes.HasMore ? revision : null, subscribers);
                Count(result, "database");
                return (result, changes.HasMore ? null : new HotTableCache.DatabaseRead(from, changes.Revision, false, entries));
            }
        }

        var page = await _kv.ListAsync(table, limit: pageSize, cancellationToken: ct).ConfigureAwait(false);
        var live = page.Entries.Select(KvEntryDto.From).ToList();
        result = new SubscribeResult(table, page.Revision, live, page.NextAfter is null, resumeFrom is not null, "snapshot", page.NextAfter, null, subscribers);
        Count(result, "database");
        return (result, page.NextAfter is null ? new HotTableCache.DatabaseRead(page.Revision, page.Revision, true, live) : null);
    }

    private static void Count(SubscribeResult result, string source) =>
        RealtimeTelemetry.Subscribes.Add(
            1,
            new KeyValuePair<string, object?>("mode", result.Reset ? "reset" : result.Mode == "changes" ? "resume" : "snapshot"),
            new KeyValuePair<string, object?>("source", source));
}
