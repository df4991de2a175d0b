using KvStore.Cdc;
using KvStore.Realtime.Diagnostics;
using KvStore.Realtime.Hubs;
using KvStore.Realtime.Snapshots;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KvStore.Realtime.Publishing;

/// <summary>
/// Reads committed change batches from the change source and publishes them to table groups through
/// <see cref="IHubContext{THub}"/> (in-process, or through a backplane from a separate process).
/// A batch is acknowledged only when every frame carrying it has been handed to SignalR, so a crash
/// never loses a change that was acknowledged. Also sends <c>progress</c> (<see cref="ProgressTargets"/>);
/// <c>presence</c> is per node (<see cref="KvPresenceNotifier"/>).
/// </summary>
internal sealed class KvChangePublisher : BackgroundService
{
    private readonly IKvChangeSource? _source;
    private readonly IHubContext<KvHub> _hub;
    private readonly KvSubscriptions _subscriptions;
    private readonly KvRealtimeOptions _options;
    private readonly ILogger _logger;
    private readonly TableFramer _framer;
    private readonly AckTracker _acks;
    private static readonly TimeSpan StatusPollInterval = TimeSpan.FromMilliseconds(20);
    private readonly ProgressTargets _progress;
    private readonly HotTableCache _cache;
    private readonly CancellationTokenSource _stopping = new();
    private readonly object _deliveringGate = new();
    private Task? _delivering;

    public KvChangePublisher(
        IHubContext<KvHub> hub,
        KvSubscriptions subscriptions,
        HotTableCache cache,
        IOptions<KvRealtimeOptions> options,
        ILogger<KvChangePublisher> logger,
        IKvChangeSource? source = null)
    {
        _source = source;
        _hub = hub;
        _subscriptions = subscriptions;
        _options = options.Value;
        _logger = logger;
        _acks = new AckTracker(source);
        _progress = new ProgressTargets(subscriptions, _options);
        Enabled = source is not null && _options.RunPublisher;
        // The cache follows the frames this process publishes to its own subscribers; through a
        // backplane its subscribers get frames from elsewhere, so it has nothing exact to follow.
        _cache = cache;
        _cache.Enabled &= Enabled && !_options.Backplane;
        _framer = new TableFramer(TimeSpan.FromSeconds(1.0 / _options.MaxFramesPerSecondPerTable), _options.TimeProvider, SendFrame);
    }

    /// <summary>Raised after a batch is acknowledged (tests await it).</summary>
    public event Action<KvChangeBatch>? Acknowledged
    {
        add => _acks.Acknowledged += value;
        remove => _acks.Acknowledged -= value;
    }

    /// <summary>True when this process reads the change stream (a source is registered and RunPublisher is on).</summary>
    public bool Enabled { get; }

    /// <summary>The change source's state, or null when the publisher does not run here.</summary>
    public KvChangeSourceStatus? SourceStatus => Enabled ? _source!.Status : null;

    /// <summary>
    /// Why this node's subscribers would not get every change from now on, or null when they will:
    /// the reader is a standby while only this process can reach them, or it has no position yet
    /// (starting, or resynchronizing after a purged binlog: it will begin at "now").
    /// </summary>
    public string? NotDeliveringReason => SourceStatus?.State switch
    {
        null => null,
        var state when HasPosition(state) => null,
        // Without a backplane this process's reader is the only one that reaches its subscribers;
        // through one, another process's reader serves them.
        "standby" => _options.Backplane ? null : "this node's change stream is a standby (another process holds its stream name; give each node its own StreamName or use a backplane)",
        var state => $"this node's change stream is {state}",
    };

    /// <summary>
    /// Waits up to <paramref name="timeout"/> until <see cref="NotDeliveringReason"/> is null; returns the
    /// last reason otherwise. A standby is answered at once: it only changes when the leader dies.
    /// </summary>
    public async Task<string?> WaitUntilDeliveringAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (NotDeliveringReason is null)
        {
            return null;
        }

        if (SourceStatus?.State != "standby")
        {
            try
            {
                // One poll for all waiters: after a restart every reconnecting client waits here at once.
                await DeliveringSignal().WaitAsync(timeout, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }
        }

        return NotDeliveringReason;
    }

    private Task DeliveringSignal()
    {
        lock (_deliveringGate)
        {
            if (_delivering is null || _delivering.IsCompleted)
            {
                _delivering = PollUntilDeliveringAsync(_stopping.Token);
            }

            return _delivering;
        }
    }

    private async Task PollUntilDeliveringAsync(CancellationToken stoppingToken)
    {
        // Rare (start-up, resync): a short poll of the source's state is simpler than a status event.
        while (NotDeliveringReason is not null && SourceStatus?.State != "standby")
        {
            await Task.Delay(StatusPollInterval, _options.TimeProvider, stoppingToken).ConfigureAwait(false);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public override void Dispose()
    {
        _stopping.Dispose();
        base.Dispose();
    }

    /// <summary>The reader has a binlog position: streaming, or reconnecting to continue from it.</summary>
    private static bool HasPosition(string? state) => state is "streaming" or "reconnecting";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled || _source is null)
        {
            return;
        }

        Log.PublisherStarted(_logger);
        var timers = RunTimersAsync(stoppingToken);
        var resync = Task.CompletedTask;
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await foreach (var batch in _source.ReadAsync(stoppingToken).ConfigureAwait(false))
                {
                    failures = 0;
                    Publish(batch);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (KvResyncRequiredException ex)
            {
                // Continue from now, then have every subscriber catch up from the database (tombstones
                // and the purge horizon make that exact); resubscribing clients drop duplicates by revision.
                // The resync goes out only once the new position exists: a client catching up before
                // that could read the database before the reader's "now" and miss what lies between.
                // Changes were skipped: no cache may answer until subscribers can read them from the database.
                _cache.Suspend();
                await _source.ResetToCurrentPositionAsync(stoppingToken).ConfigureAwait(false);
                Log.ResyncBroadcast(_logger, ex.Message);
                resync = BroadcastResyncWhenStreamingAsync(stoppingToken);
            }
            catch (Exception ex)
            {
                Log.PublisherFailed(_logger, ex);
                failures++;
                var delay = TimeSpan.FromMilliseconds(Math.Min(10_000, 100 * Math.Pow(2, Math.Min(failures, 7))));
                try
                {
                    await Task.Delay(delay, _options.TimeProvider, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }

        await timers.ConfigureAwait(false);
        await resync.ConfigureAwait(false);
    }

    private async Task BroadcastResyncWhenStreamingAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!HasPosition(SourceStatus?.State))
            {
                await Task.Delay(StatusPollInterval, _options.TimeProvider, stoppingToken).ConfigureAwait(false);
            }

            _cache.Resume();
            if (_options.Backplane)
            {
                // The subscribers are on other nodes, unknown here: every connection resumes what it holds.
                await _hub.Clients.All.SendAsync("resync", new ResyncMessage(KvSubscriptions.AllTables, "change stream resynchronized"), stoppingToken).ConfigureAwait(false);
            }
            else
            {
                foreach (var (table, _) in _subscriptions.Tables())
                {
                    await _hub.Clients.Group(KvSubscriptions.GroupName(table))
                        .SendAsync("resync", new ResyncMessage(table, "change stream resynchronized"), stoppingToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    internal void Publish(KvChangeBatch batch)
    {
        RealtimeTelemetry.ChangeBatches.Add(1);
        var byTable = batch.Changes.GroupBy(c => c.Table, StringComparer.Ordinal).ToList();
        var ack = _acks.Track(batch, byTable.Count);
        foreach (var group in byTable)
        {
            _framer.Add(group.Key, group.ToList(), ack);
        }
    }

    private Task SendFrame(TableFrame frame)
    {
        var ordered = frame.Changes.OrderBy(c => c.Revision).Select(KvEntryDto.From).ToList();
        var revision = frame.Changes.Max(c => c.Revision);
        RealtimeTelemetry.Frames.Add(1);
        // Recorded before the fan-out: a subscriber that reads the cache after joining the group either
        // finds this frame there or receives it (HotTableCache remarks).
        _cache.Record(frame.Table, ordered, frame.After, revision);
        var send = _hub.Clients.Group(KvSubscriptions.GroupName(frame.Table)).SendAsync("changes", new ChangesMessage(frame.Table, revision, ordered, frame.After));
        _progress.Observe(frame.Table, revision);
        if (send.IsCompletedSuccessfully)
        {
            _acks.Done(frame.Acks);
            return Task.CompletedTask;
        }

        return CompleteAsync(send, frame.Acks);
    }

    private async Task CompleteAsync(Task send, IReadOnlyList<AckTracker.Entry> acks)
    {
        try
        {
            await send.ConfigureAwait(false);
            _acks.Done(acks);
        }
        catch (Exception ex)
        {
            // Not acknowledged: after a restart the stream delivers these changes again.
            Log.PublisherFailed(_logger, ex);
        }
    }

    private async Task RunTimersAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), _options.TimeProvider);
        var sinceProgress = TimeSpan.Zero;
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                _framer.Sweep();
                _cache.Sweep();
                sinceProgress += TimeSpan.FromSeconds(1);
                if (sinceProgress >= _options.ProgressInterval)
                {
                    sinceProgress = TimeSpan.Zero;
                    foreach (var (table, revision) in _progress.Due())
                    {
                        await _hub.Clients.Group(KvSubscriptions.GroupName(table))
                            .SendAsync("progress", new ProgressMessage(table, revision), stoppingToken).ConfigureAwait(false);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
