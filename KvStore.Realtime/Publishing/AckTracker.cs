using KvStore.Cdc;

namespace KvStore.Realtime.Publishing;

/// <summary>
/// Acknowledges change batches in order, and only once every frame that carries a batch has been
/// sent: the acknowledged position is always the end of a fully published prefix of the stream.
/// </summary>
internal sealed class AckTracker(IKvChangeSource? source)
{
    private readonly Queue<Entry> _queue = new();
    private readonly object _gate = new();

    public event Action<KvChangeBatch>? Acknowledged;

    public Entry Track(KvChangeBatch batch, int parts)
    {
        var entry = new Entry(batch, parts);
        lock (_gate)
        {
            _queue.Enqueue(entry);
        }

        if (parts == 0)
        {
            Done([]);
        }

        return entry;
    }

    public void Done(IReadOnlyList<Entry> entries)
    {
        Entry? last = null;
        lock (_gate)
        {
            foreach (var entry in entries)
            {
                entry.Remaining--;
            }

            while (_queue.TryPeek(out var head) && head.Remaining <= 0)
            {
                last = _queue.Dequeue();
            }
        }

        if (last is not null)
        {
            if (source is not null)
            {
                // Acknowledging only records the position; the source persists it on its own schedule.
                var acknowledged = source.AcknowledgeAsync(last.Batch);
                if (!acknowledged.IsCompletedSuccessfully)
                {
                    _ = acknowledged.AsTask();
                }
            }
            Acknowledged?.Invoke(last.Batch);
        }
    }

    internal sealed class Entry(KvChangeBatch batch, int remaining)
    {
        public KvChangeBatch Batch { get; } = batch;

        public int Remaining { get; set; } = remaining;
    }
}
