using System.Collections.Concurrent;
using System.Threading.Channels;
using KvStore.Realtime.Diagnostics;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.AspNetCore.SignalR.StackExchangeRedis;
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
/// <remarks>
/// <para>
/// With the Redis backplane (<c>AddKvRedisBackplane</c>) every send goes through SignalR's own
/// <see cref="RedisHubLifetimeManager{THub}"/> (<see cref="_backplane"/>), so a publisher in another
/// process reaches the connections of every node. Registered as the lifetime manager itself, the Redis
/// manager would write each message straight to the sockets of its local group members and await them
/// all before taking the next message of the channel: one client that stops reading would stall the
/// table for everyone on the node while Redis messages pile up in memory. So this class stays the
/// lifetime manager and the Redis manager is an inner engine: it sees each local connection as an
/// <see cref="OutboxConnection"/>, whose writes go into the connection's bounded outbox and complete at
/// once. Redis delivery to a node therefore never waits for a socket, a full outbox still closes the
/// connection with <c>slow_consumer</c>, the connection cap is enforced before the Redis manager sees a
/// connection, and a message is still serialized once (by the sending process, for every protocol) and
/// shared by all members on a node.
/// </para>
/// <para>
/// The cost is one extra <see cref="HubConnectionContext"/> object per connection, and what the Redis
/// manager costs anyway: one Redis channel per connection and per group with local members. Delivery
/// through Redis pub/sub is at most once: a Redis outage drops frames, and clients then rely on
/// <c>progress</c> and reconnect/resume to catch up.
/// </para>
/// </remarks>
internal sealed class KvHubLifetimeManager : DefaultHubLifetimeManager<KvHub>
{
    private readonly ConcurrentDictionary<string, Outbox> _outboxes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, Outbox>> _groups = new(StringComparer.Ordinal);
    private readonly KvRealtimeOptions _options;
    private readonly ILogger _logger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly RedisHubLifetimeManager<KvHub>? _backplane;
    private readonly object _membership = new();
    private int _connections;

    public KvHubLifetimeManager(
        ILogger<DefaultHubLifetimeManager<KvHub>> baseLogger,
        IOptions<KvRealtimeOptions> options,
        ILogger<KvHubLifetimeManager> logger,
        ILoggerFactory loggerFactory,
        RedisHubLifetimeManager<KvHub>? backplane = null)
        : base(baseLogger)
    {
        _options = options.Value;
        _logger = logger;
        _loggerFactory = loggerFactory;
        _backplane = backplane;
    }

    public int ConnectionCount => _outboxes.Count;

    public override async Task OnConnectedAsync(HubConnectionContext connection)
    {
        // Reserve the slot before any await (the backplane's takes a Redis round trip), so connections
        // arriving together cannot pass the cap.
        if (Interlocked.Increment(ref _connections) > _options.MaxConnections)
        {
            Interlocked.Decrement(ref _connections);
            RealtimeTelemetry.RefusedConnections.Add(1);
            await connection.WriteAsync(new CloseMessage($"{KvRealtimeErrorCodes.ConnectionLimit}: this node has its maximum of {_options.MaxConnections} connections; try again later.", allowReconnect: true)).ConfigureAwait(false);
            connection.Abort();
            return;
        }

        await base.OnConnectedAsync(connection).ConfigureAwait(false);
        var outbox = new Outbox(connection, _options.MaxQueuedMessagesPerConnection, _options.MaxQueuedBytesPerConnection);
        if (_backplane is not null)
        {
            outbox.Relay = new OutboxConnection(this, outbox, _loggerFactory);
            try
            {
                await _backplane.OnConnectedAsync(outbox.Relay).ConfigureAwait(false);
            }
            catch
            {
                // Redis is unreachable: refuse the connection rather than accept one that gets nothing.
                Interlocked.Decrement(ref _connections);
                await base.OnDisconnectedAsync(connection).ConfigureAwait(false);
                await outbox.Relay.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }

        _outboxes[connection.ConnectionId] = outbox;
        outbox.Start();
        RealtimeTelemetry.Connections.Add(1);
    }

    public override async Task OnDisconnectedAsync(HubConnectionContext connection)
    {
        if (_outboxes.TryRemove(connection.ConnectionId, out var outbox))
        {
            Interlocked.Decrement(ref _connections);
            outbox.Complete();
            if (outbox.Relay is { } relay)
            {
                await _backplane!.OnDisconnectedAsync(relay).ConfigureAwait(false);
                await relay.DisposeAsync().ConfigureAwait(false);
            }

            // Only the connection's own groups (a drain of 20,000 connections must not scan every group
            // for each), and a group left empty goes away, so memory follows the tables subscribed now.
            foreach (var groupName in outbox.Groups.Keys)
            {
                LeaveLocalGroup(connection.ConnectionId, groupName);
            }

            RealtimeTelemetry.Connections.Add(-1);
        }

        await base.OnDisconnectedAsync(connection).ConfigureAwait(false);
    }

    /// <summary>True while the group has members on this node (an emptied group is removed).</summary>
    public bool HasLocalGroup(string groupName) => _groups.ContainsKey(groupName);

    private void LeaveLocalGroup(string connectionId, string groupName)
    {
        // Joins and leaves take one lock so that removing an emptied group cannot drop a member that
        // joins it at the same moment; sends read the dictionaries without it.
        lock (_membership)
        {
            if (_groups.TryGetValue(groupName, out var members) && members.TryRemove(connectionId, out _) && members.IsEmpty)
            {
                _groups.TryRemove(groupName, out _);
            }
        }
    }

    /// <summary>True when sends go through the Redis backplane (to every node) rather than to this node only.</summary>
    public bool HasBackplane => _backplane is not null;

    public override async Task AddToGroupAsync(string connectionId, string groupName, CancellationToken cancellationToken = default)
    {
        // KvHub only ever groups its own connection, so membership is managed for local connections only
        // (the Redis manager would otherwise ask the other nodes and wait for an acknowledgement).
        if (_outboxes.TryGetValue(connectionId, out var outbox))
        {
            outbox.Groups[groupName] = 0;
            lock (_membership)
            {
                _groups.GetOrAdd(groupName, _ => new ConcurrentDictionary<string, Outbox>(StringComparer.Ordinal))[connectionId] = outbox;
            }

            if (_backplane is not null)
            {
                // Completes once this node is subscribed to the group's Redis channel, so a change committed
                // after the subscriber's snapshot read is published after the subscription exists.
                await _backplane.AddToGroupAsync(connectionId, groupName, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public override async Task RemoveFromGroupAsync(string connectionId, string groupName, CancellationToken cancellationToken = default)
    {
        if (_outboxes.TryGetValue(connectionId, out var outbox))
        {
            outbox.Groups.TryRemove(groupName, out _);
        }

        LeaveLocalGroup(connectionId, groupName);
        if (_backplane is not null && outbox is not null)
        {
            await _backplane.RemoveFromGroupAsync(connectionId, groupName, cancellationToken).ConfigureAwait(false);
        }
    }

    public override Task SendGroupAsync(string groupName, string methodName, object?[] args, CancellationToken cancellationToken = default)
    {
        if (_backplane is not null)
        {
            return _backplane.SendGroupAsync(groupName, methodName, args, cancellationToken);
        }

        SendLocalGroup(groupName, methodName, args);
        return Task.CompletedTask;
    }

    /// <summary>Sends to the members of a group on this node only, also with a backplane (per-node presence).</summary>
    public void SendLocalGroup(string groupName, string methodName, object?[] args)
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
    }

    public override Task SendGroupsAsync(IReadOnlyList<string> groupNames, string methodName, object?[] args, CancellationToken cancellationToken = default)
    {
        if (_backplane is not null)
        {
            return _backplane.SendGroupsAsync(groupNames, methodName, args, cancellationToken);
        }

        foreach (var group in groupNames)
        {
            SendLocalGroup(group, methodName, args);
        }

        return Task.CompletedTask;
    }

    public override Task SendGroupExceptAsync(string groupName, string methodName, object?[] args, IReadOnlyList<string> excludedConnectionIds, CancellationToken cancellationToken = default)
    {
        if (_backplane is not null)
        {
            return _backplane.SendGroupExceptAsync(groupName, methodName, args, excludedConnectionIds, cancellationToken);
        }

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

    // Without a backplane the base class writes these (rare) sends directly; with one they must cross processes.
    public override Task SendAllAsync(string methodName, object?[] args, CancellationToken cancellationToken = default) =>
        _backplane?.SendAllAsync(methodName, args, cancellationToken) ?? base.SendAllAsync(methodName, args, cancellationToken);

    public override Task SendAllExceptAsync(string methodName, object?[] args, IReadOnlyList<string> excludedConnectionIds, CancellationToken cancellationToken = default) =>
        _backplane?.SendAllExceptAsync(methodName, args, excludedConnectionIds, cancellationToken) ?? base.SendAllExceptAsync(methodName, args, excludedConnectionIds, cancellationToken);

    public override Task SendConnectionAsync(string connectionId, string methodName, object?[] args, CancellationToken cancellationToken = default) =>
        _backplane?.SendConnectionAsync(connectionId, methodName, args, cancellationToken) ?? base.SendConnectionAsync(connectionId, methodName, args, cancellationToken);

    public override Task SendConnectionsAsync(IReadOnlyList<string> connectionIds, string methodName, object?[] args, CancellationToken cancellationToken = default) =>
        _backplane?.SendConnectionsAsync(connectionIds, methodName, args, cancellationToken) ?? base.SendConnectionsAsync(connectionIds, methodName, args, cancellationToken);

    public override Task SendUserAsync(string userId, string methodName, object?[] args, CancellationToken cancellationToken = default) =>
        _backplane?.SendUserAsync(userId, methodName, args, cancellationToken) ?? base.SendUserAsync(userId, methodName, args, cancellationToken);

    public override Task SendUsersAsync(IReadOnlyList<string> userIds, string methodName, object?[] args, CancellationToken cancellationToken = default) =>
        _backplane?.SendUsersAsync(userIds, methodName, args, cancellationToken) ?? base.SendUsersAsync(userIds, methodName, args, cancellationToken);

    public override Task<T> InvokeConnectionAsync<T>(string connectionId, string methodName, object?[] args, CancellationToken cancellationToken) =>
        _backplane?.InvokeConnectionAsync<T>(connectionId, methodName, args, cancellationToken) ?? base.InvokeConnectionAsync<T>(connectionId, methodName, args, cancellationToken);

    public override Task SetConnectionResultAsync(string connectionId, CompletionMessage result) =>
        _backplane?.SetConnectionResultAsync(connectionId, result) ?? base.SetConnectionResultAsync(connectionId, result);

    public override bool TryGetReturnType(string invocationId, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Type? type) =>
        _backplane is not null ? _backplane.TryGetReturnType(invocationId, out type) : base.TryGetReturnType(invocationId, out type);

    /// <summary>Members of a group on this node.</summary>
    public int GroupSize(string groupName) => _groups.TryGetValue(groupName, out var members) ? members.Count : 0;

    private void Enqueue(Outbox outbox, SerializedHubMessage message)
    {
        if (!outbox.TryEnqueue(message))
        {
            RealtimeTelemetry.SlowConsumerDisconnects.Add(1);
            Log.SlowConsumer(_logger, outbox.ConnectionId, outbox.QueuedMessages, outbox.QueuedBytes);
            outbox.CloseSlowConsumer();
        }
    }

    /// <summary>A connection's bounded queue of outgoing group messages and the loop that writes them.</summary>
    /// <remarks>
    /// Bounded by message count and by bytes: a message is serialized for the connection's protocol when
    /// queued (once per protocol, shared by all members) and its size counts until it is written. One
    /// message is always accepted into an empty outbox, so a single large frame still goes through.
    /// </remarks>
    private sealed class Outbox(HubConnectionContext connection, int capacity, long maxBytes)
    {
        private readonly Channel<(SerializedHubMessage Message, int Bytes)> _queue = Channel.CreateBounded<(SerializedHubMessage, int)>(
            new BoundedChannelOptions(capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

        private int _closing;
        private long _queuedBytes;

        public int QueuedMessages => _queue.Reader.Count;

        public long QueuedBytes => Interlocked.Read(ref _queuedBytes);

        public string ConnectionId => connection.ConnectionId;

        public HubConnectionContext Connection => connection;

        /// <summary>The groups this connection is in on this node (KvHub: at most one table).</summary>
        public ConcurrentDictionary<string, byte> Groups { get; } = new(StringComparer.Ordinal);

        /// <summary>The connection as the Redis backplane sees it, when there is one.</summary>
        public OutboxConnection? Relay { get; set; }

        public void Start() => _ = Task.Run(PumpAsync);

        public bool TryEnqueue(SerializedHubMessage message)
        {
            if (Volatile.Read(ref _closing) != 0)
            {
                return false;
            }

            var bytes = message.GetSerializedMessage(connection.Protocol).Length;
            var queued = Interlocked.Add(ref _queuedBytes, bytes);
            if ((queued > maxBytes && queued != bytes) || !_queue.Writer.TryWrite((message, bytes)))
            {
                Interlocked.Add(ref _queuedBytes, -bytes);
                return false;
            }

            return true;
        }

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
                    while (reader.TryRead(out var item))
                    {
                        await connection.WriteAsync(item.Message, connection.ConnectionAborted).ConfigureAwait(false);
                        Interlocked.Add(ref _queuedBytes, -item.Bytes);
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException)
            {
                // The connection went away; OnDisconnectedAsync cleans up.
            }
        }
    }

    /// <summary>
    /// A local connection as the inner Redis lifetime manager sees it: writes are queued to the
    /// connection's outbox (or close it as a slow consumer) and complete at once; identity, user and
    /// abort are the real connection's. Its own <see cref="DefaultConnectionContext"/> only carries the
    /// id and the features the Redis manager stores per connection; it has no transport, so the base
    /// class's write and abort paths (which use the transport) are never reached.
    /// </summary>
    private sealed class OutboxConnection : HubConnectionContext, IAsyncDisposable
    {
        private readonly KvHubLifetimeManager _manager;
        private readonly Outbox _outbox;
        private readonly DefaultConnectionContext _context;

        public OutboxConnection(KvHubLifetimeManager manager, Outbox outbox, ILoggerFactory loggerFactory)
            : this(manager, outbox, new DefaultConnectionContext(outbox.ConnectionId), loggerFactory)
        {
        }

        private OutboxConnection(KvHubLifetimeManager manager, Outbox outbox, DefaultConnectionContext context, ILoggerFactory loggerFactory)
            : base(context, new HubConnectionContextOptions(), loggerFactory)
        {
            _manager = manager;
            _outbox = outbox;
            _context = context;
            UserIdentifier = outbox.Connection.UserIdentifier;
        }

        public override string ConnectionId => _outbox.ConnectionId;

        public override System.Security.Claims.ClaimsPrincipal User => _outbox.Connection.User;

        public override IDictionary<object, object?> Items => _outbox.Connection.Items;

        public override CancellationToken ConnectionAborted => _outbox.Connection.ConnectionAborted;

        public override ValueTask WriteAsync(HubMessage message, CancellationToken cancellationToken = default)
        {
            _manager.Enqueue(_outbox, new SerializedHubMessage(message));
            return default;
        }

        public override ValueTask WriteAsync(SerializedHubMessage message, CancellationToken cancellationToken = default)
        {
            _manager.Enqueue(_outbox, message);
            return default;
        }

        public override void Abort() => _outbox.Connection.Abort();

        public ValueTask DisposeAsync() => _context.DisposeAsync();
    }
}
