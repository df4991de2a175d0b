using System.Collections.Concurrent;
using KvStore.Realtime.Diagnostics;
using KvStore.Realtime.FanOut;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.AspNetCore.SignalR.StackExchangeRedis;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KvStore.Realtime.Hubs;

/// <summary>
/// SignalR's default in-memory lifetime manager, with group sends rebuilt for realtime fan-out:
/// a group message is serialized once (<see cref="SerializedHubMessage"/>) and written to each member by
/// the node's <see cref="FanOutScheduler"/> (one thread, paced so that writes never wait behind fan-out),
/// straight to the connection while it keeps up and through its bounded <see cref="Outbox"/> while a
/// write is still in progress. A member whose outbox is full is a slow consumer: it gets a close message
/// (<c>slow_consumer</c>, reconnect allowed) and is aborted, so one slow client neither grows server
/// memory nor delays the others. It also enforces the connection cap.
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
/// <see cref="OutboxConnection"/>, whose writes go to the fan-out thread and complete at once. Redis
/// delivery to a node therefore never waits for a socket, a full outbox still closes the connection with
/// <c>slow_consumer</c>, the connection cap is enforced before the Redis manager sees a connection, and
/// a message is still serialized once (by the sending process, for every protocol) and shared by all
/// members on a node.
/// </para>
/// <para>
/// The cost is one extra <see cref="HubConnectionContext"/> object per connection, and what the Redis
/// manager costs anyway: one Redis channel per connection and per group with local members. Delivery
/// through Redis pub/sub is at most once: a Redis outage drops frames, and clients then rely on
/// <c>progress</c> and reconnect/resume to catch up.
/// </para>
/// </remarks>
internal sealed class KvHubLifetimeManager : DefaultHubLifetimeManager<KvHub>, IDisposable
{
    /// <summary>Members written between two drains of the thread pool (see <see cref="FanOutScheduler"/>).</summary>
    internal const int FanOutSlice = 128;

    private readonly ConcurrentDictionary<string, Outbox> _outboxes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, Outbox>> _groups = new(StringComparer.Ordinal);
    private readonly KvRealtimeOptions _options;
    private readonly ILogger _logger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly RedisHubLifetimeManager<KvHub>? _backplane;
    private readonly object _membership = new();
    private readonly FanOutScheduler _fanOut;
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
        _fanOut = new FanOutScheduler(FanOutSlice, group => _groups.TryGetValue(group, out var members) ? members : null, CloseSlowConsumer);
    }

    public void Dispose() => _fanOut.Dispose();

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
        RealtimeTelemetry.Connections.Add(1);
    }

    public override async Task OnDisconnectedAsync(HubConnectionContext connection)
    {
        if (_outboxes.TryRemove(connection.ConnectionId, out var outbox))
        {
            Interlocked.Decrement(ref _connections);
            // Out of its groups first, then closed: a send that still reaches it sees a connection that
            // left (dropped quietly), never a full outbox (which would be reported as a slow consumer).
            // Only the connection's own groups (a drain of 20,000 connections must not scan every group
            // for each), and a group left empty goes away, so memory follows the tables subscribed now.
            foreach (var groupName in outbox.Groups())
            {
                LeaveLocalGroup(connection.ConnectionId, groupName);
            }

            outbox.Leave();
            if (outbox.Relay is { } relay)
            {
                await _backplane!.OnDisconnectedAsync(relay).ConfigureAwait(false);
                await relay.DisposeAsync().ConfigureAwait(false);
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
            outbox.AddGroup(groupName);
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
            outbox.RemoveGroup(groupName);
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

        return SendLocalGroup(groupName, methodName, args);
    }

    /// <summary>
    /// Sends to the members of a group on this node only, also with a backplane (per-node presence). The
    /// task completes when every member has been written to or queued for.
    /// </summary>
    public Task SendLocalGroup(string groupName, string methodName, object?[] args, bool track = true) =>
        _groups.TryGetValue(groupName, out var members) && !members.IsEmpty
            ? _fanOut.SendGroup(groupName, new SerializedHubMessage(new InvocationMessage(methodName, args)), track: track)
            : Task.CompletedTask;

    public override Task SendGroupsAsync(IReadOnlyList<string> groupNames, string methodName, object?[] args, CancellationToken cancellationToken = default)
    {
        if (_backplane is not null)
        {
            return _backplane.SendGroupsAsync(groupNames, methodName, args, cancellationToken);
        }

        var message = new SerializedHubMessage(new InvocationMessage(methodName, args));
        return Task.WhenAll(groupNames.Where(_groups.ContainsKey).Select(group => _fanOut.SendGroup(group, message)));
    }

    public override Task SendGroupExceptAsync(string groupName, string methodName, object?[] args, IReadOnlyList<string> excludedConnectionIds, CancellationToken cancellationToken = default)
    {
        if (_backplane is not null)
        {
            return _backplane.SendGroupExceptAsync(groupName, methodName, args, excludedConnectionIds, cancellationToken);
        }

        return _groups.ContainsKey(groupName)
            ? _fanOut.SendGroup(groupName, new SerializedHubMessage(new InvocationMessage(methodName, args)), excludedConnectionIds)
            : Task.CompletedTask;
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

    /// <summary>Sends to one local connection through the fan-out thread, in order with its group messages (the backplane's path).</summary>
    internal void SendOne(Outbox outbox, SerializedHubMessage message) => _fanOut.SendOne(outbox, message);

    private void CloseSlowConsumer(Outbox outbox)
    {
        // The queue's size is gone once closed: read it first, for the log.
        var messages = outbox.QueuedMessages;
        var bytes = outbox.QueuedBytes;
        if (!outbox.TryClose())
        {
            return;
        }

        RealtimeTelemetry.SlowConsumerDisconnects.Add(1);
        Log.SlowConsumer(_logger, outbox.ConnectionId, messages, bytes);
        var connection = outbox.Connection;
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
}
