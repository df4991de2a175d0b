using System.Collections.Concurrent;
using System.Threading.Channels;
using KvStore.Realtime.Diagnostics;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KvStore.Realtime.Hubs;

/// <summary>
/// SignalR's default in-memory lifetime manager, with group sends rebuilt for realtime fan-out:
/// a group message is serialized once (<see cref="SerializedHubMessage"/>) and queued to each member's
/// bounded outbox, drained by one writer per connection. A member whose outbox is full is a slow
/// consumer: it gets a close message (<c>slow_consumer</c>, reconnect allowed) and is aborted, so one
/// slow client neither grows server memory nor delays the others. It also enforces the connection cap.
/// </summary>
internal sealed class KvHubLifetimeManager : DefaultHubLifetimeManager<KvHub>
{
    private readonly ConcurrentDictionary<string, Outbox> _outboxes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, Outbox>> _groups = new(StringComparer.Ordinal);
    private readonly KvRealtimeOptions _options;
    private readonly ILogger _logger;

    public KvHubLifetimeManager(ILogger<DefaultHubLifetimeManager<KvHub>> baseLogger, IOptions<KvRealtimeOptions> options, ILogger<KvHubLifetimeManager> logger)
        : base(baseLogger)
    {
        _options = options.Value;
        _logger = logger;
    }

    public int ConnectionCount => _outboxes.Count;

    public override async Task OnConnectedAsync(HubConnectionContext connection)
    {
        if (_outboxes.Count >= _options.MaxConnections)
        {
            RealtimeTelemetry.RefusedConnections.Add(1);
            await connection.WriteAsync(new CloseMessage($"{KvRealtimeErrorCodes.ConnectionLimit}: this node has its maximum of {_options.MaxConnections} connections; try again later.", allowReconnect: true)).ConfigureAwait(false);
            connection.Abort();
            return;
        }

        await base.OnConnectedAsync(connection).ConfigureAwait(false);
        var outbox = new Outbox(connection, _options.MaxQueuedMessagesPerConnection);
        _outboxes[connection.ConnectionId] = outbox;
        outbox.Start();
        RealtimeTelemetry.Connections.Add(1);
    }

    public override async Task OnDisconnectedAsync(HubConnectionContext connection)
    {
        if (_outboxes.TryRemove(connection.ConnectionId, out var outbox))
        {
            outbox.Complete();
            foreach (var group in _groups.Values)
            {
                group.TryRemove(connection.ConnectionId, out _);
            }

            RealtimeTelemetry.Connections.Add(-1);
        }

        await base.OnDisconnectedAsync(connection).ConfigureAwait(false);
    }

    public override Task AddToGroupAsync(string connectionId, string groupName, CancellationToken cancellationToken = default)
    {
        if (_outboxes.TryGetValue(connectionId, out var outbox))
        {
            _groups.GetOrAdd(groupName, _ => new ConcurrentDictionary<string, Outbox>(StringComparer.Ordinal))[connectionId] = outbox;
        }

        return Task.CompletedTask;
    }

    public override Task RemoveFromGroupAsync(string connectionId, string groupName, CancellationToken cancellationToken = default)
    {
        if (_groups.TryGetValue(groupName, out var members))
        {
            members.TryRemove(connectionId, out _);
            if (members.IsEmpty)
            {
                _groups.TryRemove(new KeyValuePair<string, ConcurrentDictionary<string, Outbox>>(groupName, members));
            }
        }

        return Task.CompletedTask;
    }

    public override Task SendGroupAsync(string groupName, string methodName, object?[] args, CancellationToken cancellationToken = default)
    {
        if (_groups.TryGetValue(groupName, out var members) && !members.IsEmpty)
        {
            var message = new SerializedHubMessage(new InvocationMessage(methodName, args));
            foreach (var outbox in members.Values)
            {
                Enqueue(outbox, message);
            }

            RealtimeTelemetry.FanOutMessages.Add(members.Count);
        }

        return Task.CompletedTask;
    }

    public override Task SendGroupsAsync(IReadOnlyList<string> groupNames, string methodName, object?[] args, CancellationToken cancellationToken = default)
    {
        foreach (var group in groupNames)
        {
            _ = SendGroupAsync(group, methodName, args, cancellationToken);
        }

        return Task.CompletedTask;
    }

    public override Task SendGroupExceptAsync(string groupName, string methodName, object?[] args, IReadOnlyList<string> excludedConnectionIds, CancellationToken cancellationToken = default)
    {
        if (_groups.TryGetValue(groupName, out var members))
        {
            var message = new SerializedHubMessage(new InvocationMessage(methodName, args));
            foreach (var (id, outbox) in members)
            {
                if (!excludedConnectionIds.Contains(id))
                {
                    Enqueue(outbox, message);
                }
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>Members of a group on this node.</summary>
    public int GroupSize(string groupName) => _groups.TryGetValue(groupName, out var members) ? members.Count : 0;

    private void Enqueue(Outbox outbox, SerializedHubMessage message)
    {
        if (!outbox.TryEnqueue(message))
        {
            RealtimeTelemetry.SlowConsumerDisconnects.Add(1);
            Log.SlowConsumer(_logger, outbox.ConnectionId, _options.MaxQueuedMessagesPerConnection);
            outbox.CloseSlowConsumer();
        }
    }

    /// <summary>A connection's bounded queue of outgoing group messages and the loop that writes them.</summary>
    private sealed class Outbox(HubConnectionContext connection, int capacity)
    {
        private readonly Channel<SerializedHubMessage> _queue = Channel.CreateBounded<SerializedHubMessage>(
            new BoundedChannelOptions(capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

        private int _closing;

        public string ConnectionId => connection.ConnectionId;

        public void Start() => _ = Task.Run(PumpAsync);

        public bool TryEnqueue(SerializedHubMessage message) => Volatile.Read(ref _closing) == 0 && _queue.Writer.TryWrite(message);

        public void Complete() => _queue.Writer.TryComplete();

        public void CloseSlowConsumer()
        {
            if (Interlocked.Exchange(ref _closing, 1) != 0)
            {
                return;
            }

            _queue.Writer.TryComplete();
            _ = Task.Run(async () =>
            {
                try
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                    await connection.WriteAsync(
                        new CloseMessage($"{KvRealtimeErrorCodes.SlowConsumer}: the connection could not keep up with the changes; reconnect and resume.", allowReconnect: true),
                        timeout.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException)
                {
                    // The close message is best effort; the abort below is what frees the resources.
                }
                finally
                {
                    connection.Abort();
                }
            });
        }

        private async Task PumpAsync()
        {
            try
            {
                var reader = _queue.Reader;
                while (await reader.WaitToReadAsync(connection.ConnectionAborted).ConfigureAwait(false))
                {
                    while (reader.TryRead(out var message))
                    {
                        await connection.WriteAsync(message, connection.ConnectionAborted).ConfigureAwait(false);
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException)
            {
                // The connection went away; OnDisconnectedAsync cleans up.
            }
        }
    }
}
