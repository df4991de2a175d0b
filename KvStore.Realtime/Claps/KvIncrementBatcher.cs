using System.Collections.Concurrent;
using KvStore.Realtime.Diagnostics;
using KvStore.Validation;
using Microsoft.Extensions.Options;

namespace KvStore.Realtime.Claps;

/// <summary>
/// Merges increments of the same key that arrive within a short window into one SQL increment, so a
/// hot key (an article's claps) costs at most one statement per window whatever the clap rate. Every
/// caller completes only after that statement commits and gets the committed entry (the new total).
/// A merged increment is applied even if its caller cancels while waiting (like any write in flight).
/// </summary>
internal sealed class KvIncrementBatcher(IKvStore kv, IOptions<KvRealtimeOptions> options)
{
    private readonly ConcurrentDictionary<(string Table, string Key), Pending> _pending = new();
    private readonly KvRealtimeOptions _options = options.Value;

    public async Task<KvEntry> IncrementAsync(string table, string key, long delta, CancellationToken cancellationToken)
    {
        // Bad input fails for this caller alone, before it can join (and poison) a merged batch.
        KvValidator.Table(table);
        KvValidator.Key(key);
        RealtimeTelemetry.IncrementCalls.Add(1);
        while (true)
        {
            var pending = _pending.GetOrAdd((table, key), k => new Pending(k.Table, k.Key));
            bool first;
            lock (pending)
            {
                if (pending.Closed)
                {
                    continue;
                }

                long sum;
                try
                {
                    sum = checked(pending.Sum + delta);
                }
                catch (OverflowException)
                {
                    // This delta does not fit in the merged sum: apply it on its own.
                    break;
                }

                pending.Sum = sum;
                first = pending.Callers++ == 0;
            }

            if (first)
            {
                _ = FlushAfterWindowAsync(pending);
            }

            return await pending.Result.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        RealtimeTelemetry.IncrementStatements.Add(1);
        return await kv.IncrementAsync(table, key, delta, cancellationToken).ConfigureAwait(false);
    }

    private async Task FlushAfterWindowAsync(Pending pending)
    {
        await Task.Delay(_options.IncrementWindow, _options.TimeProvider).ConfigureAwait(false);
        long sum;
        lock (pending)
        {
            pending.Closed = true;
            sum = pending.Sum;
        }

        _pending.TryRemove(new KeyValuePair<(string, string), Pending>((pending.Table, pending.Key), pending));
        try
        {
            RealtimeTelemetry.IncrementStatements.Add(1);
            pending.Result.SetResult(await kv.IncrementAsync(pending.Table, pending.Key, sum, CancellationToken.None).ConfigureAwait(false));
        }
        catch (Exception ex)
        {
            pending.Result.SetException(ex);
        }
    }

    private sealed class Pending(string table, string key)
    {
        public string Table { get; } = table;
        public string Key { get; } = key;
        public long Sum { get; set; }
        public int Callers { get; set; }
        public bool Closed { get; set; }
        public TaskCompletionSource<KvEntry> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
