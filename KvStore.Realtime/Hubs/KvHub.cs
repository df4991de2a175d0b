using System.Text.Json;
using KvStore.Realtime.Claps;
using KvStore.Realtime.Diagnostics;
using KvStore.Realtime.Publishing;
using KvStore.Realtime.Snapshots;
using KvStore.Validation;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KvStore.Realtime.Hubs;

/// <summary>
/// The realtime hub (contract in docs/protocol.md). A connection subscribes to one table at a time:
/// it joins the table's group first, then reads a consistent snapshot at revision R, so every change
/// after R is delivered to it. Writes go through KvStore and answer after the commit; subscribers
/// learn about them only from the binlog.
/// </summary>
internal sealed class KvHub(
    IKvStore kv,
    KvSubscriptions subscriptions,
    IKvAccessPolicy policy,
    KvIncrementBatcher increments,
    KvChangePublisher publisher,
    SubscribeReader reader,
    KvHubWriteLimiter writeLimiter,
    IOptions<KvRealtimeOptions> options,
    ILogger<KvHub> logger) : Hub
{
    private readonly KvRealtimeOptions _options = options.Value;

    public override async Task OnDisconnectedAsync(Exception? exception)
    {
        var table = subscriptions.Remove(Context.ConnectionId);
        if (table is not null)
        {
            await Groups.RemoveFromGroupAsync(Context.ConnectionId, KvSubscriptions.GroupName(table)).ConfigureAwait(false);
        }
    }

    /// <summary>Subscribes to <paramref name="table"/>: a snapshot, or with <paramref name="resumeFrom"/> the changes after that revision.</summary>
    public async Task<SubscribeResult> Subscribe(string table, long? resumeFrom = null)
    {
        KvValidator.Table(table);
        KvValidator.Revision(resumeFrom, nameof(resumeFrom));
        var ct = Context.ConnectionAborted;
        await RequireAsync(policy.CanReadAsync(Context.User ?? new(), table, ct), "read", table).ConfigureAwait(false);
        if (await publisher.WaitUntilDeliveringAsync(_options.StreamReadyTimeout, ct).ConfigureAwait(false) is { } notDelivering)
        {
            throw new HubException($"{KvRealtimeErrorCodes.NotReady}: {notDelivering}; retry shortly.");
        }

        var limit = _options.SubscriberLimit?.Invoke(table) ?? _options.MaxSubscribersPerTable;
        if (!subscriptions.TryAdd(Context.ConnectionId, table, limit, out var count, out var previous))
        {
            throw new HubException($"{KvRealtimeErrorCodes.SubscriberLimit}: table '{table}' already has its maximum of {limit} subscribers.");
        }

        if (previous is not null)
        {
            await Groups.RemoveFromGroupAsync(Context.ConnectionId, KvSubscriptions.GroupName(previous), ct).ConfigureAwait(false);
        }

        try
        {
            // Join before reading: a change published before the join was in the binlog before it, and
            // the snapshot read waits for such a commit to be visible (KvSql.BeginSnapshot), so it is
            // in the snapshot; anything published later reaches this connection through the group.
            await Groups.AddToGroupAsync(Context.ConnectionId, KvSubscriptions.GroupName(table), ct).ConfigureAwait(false);
            var result = await reader.ReadAsync(table, resumeFrom, count, ct).ConfigureAwait(false);
            Log.Subscribed(logger, Context.ConnectionId, table, result.Reset ? "reset" : result.Mode, result.Revision);
            return result;
        }
        catch
        {
            subscriptions.Remove(Context.ConnectionId);
            await Groups.RemoveFromGroupAsync(Context.ConnectionId, KvSubscriptions.GroupName(table), CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Leaves the current table, if any.</summary>
    public async Task Unsubscribe()
    {
        var table = subscriptions.Remove(Context.ConnectionId);
        if (table is not null)
        {
            await Groups.RemoveFromGroupAsync(Context.ConnectionId, KvSubscriptions.GroupName(table), Context.ConnectionAborted).ConfigureAwait(false);
        }
    }

    /// <summary>Upserts a value; answers after the commit.</summary>
    public async Task<KvEntryDto> Put(string table, string key, JsonElement value, KvWriteOptionsDto? options = null)
    {
        await AuthorizeWriteAsync(table).ConfigureAwait(false);
        var put = KvHttpWriteOptions.Validate(options);
        return KvEntryDto.From(await kv.PutAsync(table, key, value, put, Context.ConnectionAborted).ConfigureAwait(false));
    }

    /// <summary>Soft-deletes a key.</summary>
    public async Task<KvDeleteResultDto> Delete(string table, string key, long? ifRevision = null)
    {
        await AuthorizeWriteAsync(table).ConfigureAwait(false);
        var ct = Context.ConnectionAborted;
        var tombstone = await kv.DeleteAsync(table, key, ifRevision, ct).ConfigureAwait(false);
        return tombstone is null
            ? new KvDeleteResultDto(table, key, false, await kv.GetTableRevisionAsync(table, ct).ConfigureAwait(false))
            : new KvDeleteResultDto(table, key, true, tombstone.Revision);
    }

    /// <summary>Adds <paramref name="delta"/> to a JSON integer; merged with concurrent increments of the same key.</summary>
    public async Task<KvEntryDto> Increment(string table, string key, long delta = 1)
    {
        await AuthorizeWriteAsync(table).ConfigureAwait(false);
        return KvEntryDto.From(await increments.IncrementAsync(table, key, delta, Context.ConnectionAborted).ConfigureAwait(false));
    }

    /// <summary>Commits puts and deletes on one table atomically.</summary>
    public async Task<KvCommitResultDto> Commit(string table, IReadOnlyList<KvBatchOperationDto> operations)
    {
        await AuthorizeWriteAsync(table).ConfigureAwait(false);
        var batch = KvHttpWriteOptions.ToBatch(table, operations);
        var result = await kv.CommitAsync(batch, Context.ConnectionAborted).ConfigureAwait(false);
        return new KvCommitResultDto(table, result.Revision, result.Entries.Select(KvEntryDto.From).ToList());
    }

    private async Task AuthorizeWriteAsync(string table)
    {
        KvValidator.Table(table);
        if (!writeLimiter.TryAcquire(Context.ConnectionId))
        {
            throw new HubException($"{KvRealtimeErrorCodes.RateLimited}: more than {_options.WritesPerSecond} writes per second on this connection; slow down.");
        }

        await RequireAsync(policy.CanWriteAsync(Context.User ?? new(), table, Context.ConnectionAborted), "write", table).ConfigureAwait(false);
    }

    private static async Task RequireAsync(ValueTask<bool> decision, string action, string table)
    {
        if (!await decision.ConfigureAwait(false))
        {
            throw new HubException($"{KvRealtimeErrorCodes.Forbidden}: you may not {action} table '{table}'.");
        }
    }
}

/// <summary>Maps KvStore errors thrown by hub methods to <see cref="HubException"/>s with a stable code ("code: message").</summary>
internal sealed class KvHubErrorFilter : IHubFilter
{
    public async ValueTask<object?> InvokeMethodAsync(HubInvocationContext invocationContext, Func<HubInvocationContext, ValueTask<object?>> next)
    {
        try
        {
            return await next(invocationContext).ConfigureAwait(false);
        }
        catch (KvConflictException ex)
        {
            throw new HubException($"{ex.Code}: {ex.Message} (currentRevision={ex.CurrentRevision})");
        }
        catch (KvStoreException ex)
        {
            throw new HubException($"{ex.Code}: {ex.Message}");
        }
    }
}
