using KvStore.Realtime.FanOut;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.Extensions.Logging;

namespace KvStore.Realtime.Hubs;

/// <summary>
/// A local connection as the inner Redis lifetime manager sees it: writes go to the node's fan-out
/// thread, in order with the connection's other messages, and complete at once (the outbox bounds what
/// waits, and closes a slow consumer); identity, user and abort are the real connection's. Its own <see cref="DefaultConnectionContext"/> only carries the
/// id and the features the Redis manager stores per connection; it has no transport, so the base
/// class's write and abort paths (which use the transport) are never reached.
/// </summary>
internal sealed class OutboxConnection : HubConnectionContext, IAsyncDisposable
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
        _manager.SendOne(_outbox, new SerializedHubMessage(message));
        return default;
    }

    public override ValueTask WriteAsync(SerializedHubMessage message, CancellationToken cancellationToken = default)
    {
        _manager.SendOne(_outbox, message);
        return default;
    }

    public override void Abort() => _outbox.Connection.Abort();

    public ValueTask DisposeAsync() => _context.DisposeAsync();
}
