using Microsoft.AspNetCore.SignalR;

namespace KvStore.Realtime.FanOut;

/// <summary>What <see cref="Outbox.Send"/> did with a message.</summary>
internal enum OutboxResult
{
    /// <summary>Handed to the connection's transport, or queued behind a write still in progress.</summary>
    Accepted,

    /// <summary>Queued (<see cref="Outbox.Post"/>); the fan-out thread must <see cref="Outbox.Flush"/> the outbox.</summary>
    Posted,

    /// <summary>The bounds were reached: the connection cannot keep up (a slow consumer).</summary>
    Full,

    /// <summary>The connection is leaving or closed; the message is dropped, and that is nobody's fault.</summary>
    Gone,
}

/// <summary>
/// A connection's outgoing group messages. While the connection keeps up, a message is written straight
/// to its transport by the fan-out thread (no queue, no task of its own). Only while a write is still
/// in progress (the transport's buffer is full, or another write holds the connection) do later
/// messages wait here, bounded by count and bytes, and the completion of that write drains them in
/// order. Messages that arrive on other threads (the backplane's) wait here too until the fan-out thread
/// flushes them, under the same bounds. One message is always accepted into an empty queue, so a single
/// large frame still goes through.
/// </summary>
/// <remarks>
/// An idle connection costs this object and nothing else: the queue is allocated on the first wait.
/// A message is serialized for the connection's protocol once and shared by all members
/// (<see cref="SerializedHubMessage"/> caches it per protocol).
/// </remarks>
internal sealed class Outbox(HubConnectionContext connection, int capacity, long maxBytes)
{
    private const int Open = 0;
    private const int Closing = 1;
    private const int Gone = 2;

    private readonly object _gate = new();
    private Queue<(SerializedHubMessage Message, int Bytes)>? _queue;
    private long _queuedBytes;
    private bool _writing;
    private bool _posted;
    private int _state;
    private string? _group;
    private HashSet<string>? _moreGroups;

    public string ConnectionId => connection.ConnectionId;

    public HubConnectionContext Connection => connection;

    /// <summary>The connection as the Redis backplane sees it, when there is one.</summary>
    public Hubs.OutboxConnection? Relay { get; set; }

    public int QueuedMessages
    {
        get
        {
            lock (_gate)
            {
                return _queue?.Count ?? 0;
            }
        }
    }

    public long QueuedBytes
    {
        get
        {
            lock (_gate)
            {
                return _queuedBytes;
            }
        }
    }

    /// <summary>Writes <paramref name="message"/>, or queues it behind the write in progress (fan-out thread).</summary>
    public OutboxResult Send(SerializedHubMessage message)
    {
        lock (_gate)
        {
            if (_state != Open)
            {
                return OutboxResult.Gone;
            }

            if (_writing || _posted)
            {
                return EnqueueLocked(message);
            }

            _writing = true;
        }

        Continue(StartWrite(message));
        return OutboxResult.Accepted;
    }

    /// <summary>
    /// Queues <paramref name="message"/> from any thread (the backplane's); <see cref="OutboxResult.Posted"/>
    /// when the fan-out thread must now <see cref="Flush"/> this outbox. The bounds apply as for sends.
    /// </summary>
    public OutboxResult Post(SerializedHubMessage message)
    {
        lock (_gate)
        {
            if (_state != Open)
            {
                return OutboxResult.Gone;
            }

            var result = EnqueueLocked(message);
            if (result != OutboxResult.Accepted || _writing || _posted)
            {
                return result;
            }

            _posted = true;
            return OutboxResult.Posted;
        }
    }

    /// <summary>Writes what <see cref="Post"/> queued (fan-out thread).</summary>
    public void Flush()
    {
        SerializedHubMessage first;
        lock (_gate)
        {
            _posted = false;
            if (_state != Open || _writing || _queue is not { Count: > 0 })
            {
                return;
            }

            var item = _queue.Dequeue();
            _queuedBytes -= item.Bytes;
            first = item.Message;
            _writing = true;
        }

        Continue(StartWrite(first));
    }

    private OutboxResult EnqueueLocked(SerializedHubMessage message)
    {
        var bytes = message.GetSerializedMessage(connection.Protocol).Length;
        var queued = _queue?.Count ?? 0;
        if (queued >= capacity || (queued > 0 && _queuedBytes + bytes > maxBytes))
        {
            return OutboxResult.Full;
        }

        (_queue ??= new Queue<(SerializedHubMessage, int)>()).Enqueue((message, bytes));
        _queuedBytes += bytes;
        return OutboxResult.Accepted;
    }

    /// <summary>The connection is leaving: later sends are <see cref="OutboxResult.Gone"/>, queued messages are dropped.</summary>
    public void Leave()
    {
        lock (_gate)
        {
            _state = Gone;
            DropQueue();
        }
    }

    /// <summary>Marks the connection as a slow consumer; true only for the first caller (one log, one close).</summary>
    public bool TryClose()
    {
        lock (_gate)
        {
            if (_state != Open)
            {
                return false;
            }

            _state = Closing;
            DropQueue();
            return true;
        }
    }

    public void AddGroup(string group)
    {
        lock (_gate)
        {
            if (_group is null || _group == group)
            {
                _group = group;
            }
            else
            {
                (_moreGroups ??= new HashSet<string>(StringComparer.Ordinal)).Add(group);
            }
        }
    }

    public void RemoveGroup(string group)
    {
        lock (_gate)
        {
            if (_group == group)
            {
                _group = null;
            }
            else
            {
                _moreGroups?.Remove(group);
            }
        }
    }

    /// <summary>The groups this connection is in on this node (KvHub: at most one table).</summary>
    public List<string> Groups()
    {
        lock (_gate)
        {
            var groups = new List<string>((_moreGroups?.Count ?? 0) + 1);
            if (_group is not null)
            {
                groups.Add(_group);
            }

            if (_moreGroups is not null)
            {
                groups.AddRange(_moreGroups);
            }

            return groups;
        }
    }

    private ValueTask StartWrite(SerializedHubMessage message)
    {
        try
        {
            return connection.WriteAsync(message, connection.ConnectionAborted);
        }
        catch (Exception ex)
        {
            return ValueTask.FromException(ex);
        }
    }

    /// <summary>Finishes a write; while it completes synchronously, goes on with the queued messages on this thread.</summary>
    private void Continue(ValueTask write)
    {
        while (true)
        {
            if (!write.IsCompleted)
            {
                _ = ContinueAsync(write);
                return;
            }

            try
            {
                write.GetAwaiter().GetResult();
            }
            catch (Exception)
            {
                // The connection went away (aborted, transport closed); OnDisconnectedAsync cleans up.
                Leave();
                return;
            }

            SerializedHubMessage next;
            lock (_gate)
            {
                if (_queue is not { Count: > 0 })
                {
                    _writing = false;
                    return;
                }

                var item = _queue.Dequeue();
                _queuedBytes -= item.Bytes;
                next = item.Message;
            }

            write = StartWrite(next);
        }
    }

    private async Task ContinueAsync(ValueTask write)
    {
        try
        {
            await write.ConfigureAwait(false);
        }
        catch (Exception)
        {
            Leave();
            return;
        }

        Continue(ValueTask.CompletedTask);
    }

    private void DropQueue()
    {
        _queue?.Clear();
        _queuedBytes = 0;
    }
}
