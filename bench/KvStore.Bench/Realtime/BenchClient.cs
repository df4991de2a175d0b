using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;

namespace KvStore.Bench.Realtime;

/// <summary>Counters shared by every client of one measurement (Interlocked; read at the end of a cell).</summary>
internal sealed class ClientCounters
{
    public long Frames;
    public long ChangesApplied;
    public long Duplicates;
    public long SnapshotOverlaps;
    public long Gaps;
    public long ProgressGaps;
    public long Resyncs;
    public long Resumes;
    public long ResumeFailures;
    public long Resets;
    public long Incomplete;
    public long Closes;
    public long SlowConsumerCloses;
    public long Reconnects;
    public long ReconnectFailures;

    public void Reset()
    {
        Frames = ChangesApplied = Duplicates = SnapshotOverlaps = Gaps = ProgressGaps = Resyncs = Resumes = ResumeFailures = Resets = Incomplete = 0;
        Closes = SlowConsumerCloses = Reconnects = ReconnectFailures = 0;
    }

    public string Problems() =>
        $"gaps {Gaps}, progress gaps {ProgressGaps}, re-deliveries dropped {Duplicates}, frames the subscribe result already covered {SnapshotOverlaps}, resumes {Resumes} (failed {ResumeFailures}, reset {Resets}), " +
        $"closes {Closes} (slow_consumer {SlowConsumerCloses}), reconnects {Reconnects} (failed {ReconnectFailures}), incomplete {Incomplete}";
}

/// <summary>
/// A load-generator hub client that follows docs/protocol.md, so the losses and duplicates it counts
/// are real: frames that arrive before the <c>Subscribe</c> result are buffered and applied after it;
/// a change at or below the held revision is dropped (counted as a duplicate when it was not a
/// buffered frame the snapshot already covered); a frame whose <c>after</c> is above the held revision,
/// a <c>progress</c> above it and a <c>resync</c> make the client resume with <c>resumeFrom</c> = held; a
/// closed connection reconnects (250 ms · 2ⁿ, at most 5 s, as samples/KvStore.Demo/wwwroot/kvclient.js)
/// and resumes. Receive times are <see cref="Stopwatch.GetTimestamp"/> values (CLOCK_MONOTONIC, the same
/// clock in every process of the machine); nothing is logged per message.
/// </summary>
internal sealed class BenchClient : IAsyncDisposable
{
    private readonly object _gate = new();
    private readonly List<(ChangesFrame Frame, long Timestamp)> _buffer = [];
    private readonly ClientCounters _counters;
    private bool _subscribing;
    private long _subscribedRevision;
    private int _resuming;
    private int _reconnecting;
    private volatile bool _stopping;

    public BenchClient(int index, string baseUrl, ClientCounters counters)
    {
        Index = index;
        BaseUrl = baseUrl;
        _counters = counters;
        Connection = Build(baseUrl + "/hubs/kv");
        Connection.On<ChangesFrame>("changes", OnChanges);
        Connection.On<ProgressFrame>("progress", OnProgress);
        Connection.On<ResyncFrame>("resync", OnResync);
        Connection.On<JsonElement>("presence", _ => { });
        Connection.Closed += OnClosedAsync;
    }

    public int Index { get; }

    public string BaseUrl { get; }

    public HubConnection Connection { get; }

    /// <summary>Reconnect and resume when the connection closes (until disposed or past <see cref="ReconnectDeadline"/>).</summary>
    public bool AutoReconnect { get; set; } = true;

    /// <summary>Give up reconnecting after this long of trying (bounded runs).</summary>
    public TimeSpan ReconnectDeadline { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>Called under the client's lock for every change applied (revision above the one held), with the receive timestamp.</summary>
    public Action<BenchClient, Change, long>? OnApplied { get; set; }

    public string? Table { get; private set; }

    public long Revision { get; private set; }

    /// <summary>Timestamp at which the last resume after a reconnect completed (0: none).</summary>
    public long ResumedAt { get; private set; }

    /// <summary>Timestamp of the last change this client applied (0: none).</summary>
    public long LastAppliedAt { get; private set; }

    /// <summary>True while the connection is closed and being reconnected.</summary>
    public bool Disconnected => Volatile.Read(ref _reconnecting) != 0;

    /// <summary>Each key's state as this client holds it (tombstones included).</summary>
    public Dictionary<string, Held> Entries { get; } = new(StringComparer.Ordinal);

    public static HubConnection Build(string url) =>
        new HubConnectionBuilder()
            .WithUrl(new Uri(url), HttpTransportType.WebSockets, o => o.SkipNegotiation = true)
            .Build();

    public async Task StartAsync(CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        await Connection.StartAsync(timeout.Token);
    }

    /// <summary>Hub <c>Put</c> (every argument: SignalR binds by count, the options are not optional on the wire).</summary>
    public Task<Change> PutAsync(string table, string key, long value, CancellationToken ct = default) =>
        Connection.InvokeCoreAsync<Change>("Put", [table, key, value, null], ct);

    /// <summary>Hub <c>Increment</c>; answers the committed total.</summary>
    public Task<Change> IncrementAsync(string table, string key, long delta, CancellationToken ct = default) =>
        Connection.InvokeCoreAsync<Change>("Increment", [table, key, delta], ct);

    /// <summary>The number value of <paramref name="key"/> as held (claps), or null.</summary>
    public long? Number(string key)
    {
        lock (_gate)
        {
            return Entries.TryGetValue(key, out var held) && held.Live ? held.Number : null;
        }
    }

    /// <summary>Live keys and their revisions, for comparing with the table.</summary>
    public Dictionary<string, long> LiveRevisions()
    {
        lock (_gate)
        {
            return Entries.Where(e => e.Value.Live).ToDictionary(e => e.Key, e => e.Value.Revision, StringComparer.Ordinal);
        }
    }

    public async Task<SubscribeReply> SubscribeAsync(string table, long? resumeFrom, CancellationToken ct = default)
    {
        lock (_gate)
        {
            _subscribing = true;
            _buffer.Clear();
            if (Table != table)
            {
                Entries.Clear();
                Revision = 0;
            }

            Table = table;
        }

        SubscribeReply reply;
        try
        {
            reply = await Connection.InvokeAsync<SubscribeReply>("Subscribe", table, resumeFrom, ct);
        }
        catch
        {
            lock (_gate)
            {
                _subscribing = false;
                _buffer.Clear();
            }

            throw;
        }

        var now = Stopwatch.GetTimestamp();
        var gap = false;
        lock (_gate)
        {
            if (reply.Mode == "snapshot")
            {
                Entries.Clear();
            }

            if (reply.Reset)
            {
                Interlocked.Increment(ref _counters.Resets);
            }

            if (!reply.Complete)
            {
                // Paging a large snapshot is not implemented here: the scenarios keep tables under 500 keys.
                Interlocked.Increment(ref _counters.Incomplete);
            }

            var held = reply.Mode == "snapshot" ? 0 : Revision;
            foreach (var entry in reply.Entries)
            {
                Apply(entry, held, now);
            }

            Revision = reply.Revision;
            _subscribedRevision = reply.Revision;
            _subscribing = false;
            foreach (var (frame, timestamp) in _buffer)
            {
                gap |= !ApplyFrame(frame, timestamp, buffered: true);
            }

            _buffer.Clear();
        }

        if (gap)
        {
            ResumeInBackground();
        }

        return reply;
    }

    public async ValueTask DisposeAsync()
    {
        _stopping = true;
        try
        {
            await Connection.DisposeAsync();
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or InvalidOperationException)
        {
        }
    }

    private void OnChanges(ChangesFrame frame)
    {
        var now = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _counters.Frames);
        bool applied;
        lock (_gate)
        {
            if (frame.Table != Table)
            {
                return;
            }

            if (_subscribing)
            {
                _buffer.Add((frame, now));
                return;
            }

            applied = ApplyFrame(frame, now, buffered: false);
        }

        if (!applied)
        {
            ResumeInBackground();
        }
    }

    private void OnProgress(ProgressFrame progress)
    {
        bool behind;
        lock (_gate)
        {
            behind = progress.Table == Table && !_subscribing && progress.Revision > Revision;
        }

        if (behind)
        {
            Interlocked.Increment(ref _counters.ProgressGaps);
            ResumeInBackground();
        }
    }

    private void OnResync(ResyncFrame resync)
    {
        if (resync.Table == Table || resync.Table == "*")
        {
            Interlocked.Increment(ref _counters.Resyncs);
            ResumeInBackground();
        }
    }

    /// <summary>False when the frame does not continue from the revision held (changes were missed).</summary>
    private bool ApplyFrame(ChangesFrame frame, long timestamp, bool buffered)
    {
        if (frame.After > Revision)
        {
            Interlocked.Increment(ref _counters.Gaps);
            return false;
        }

        var held = Revision;
        foreach (var change in frame.Changes)
        {
            if (change.Revision > held || change.Unversioned == true)
            {
                Apply(change, held, timestamp);
            }
            else if (!buffered)
            {
                // A frame queued for this connection before its Subscribe result went out can arrive after
                // it: the result already covered it (protocol.md allows it; dropped by revision). Anything
                // else at or below the held revision was delivered twice.
                Interlocked.Increment(ref change.Revision <= _subscribedRevision ? ref _counters.SnapshotOverlaps : ref _counters.Duplicates);
            }
        }

        Revision = Math.Max(Revision, frame.Revision);
        return true;
    }

    private void Apply(Change change, long held, long timestamp)
    {
        if (!Entries.TryGetValue(change.Key, out var current) || current.Revision <= change.Revision || change.Unversioned == true)
        {
            Entries[change.Key] = new Held(change.Revision, change.Value, change.Op == "put");
        }

        if (change.Revision > held)
        {
            LastAppliedAt = timestamp;
            Interlocked.Increment(ref _counters.ChangesApplied);
            OnApplied?.Invoke(this, change, timestamp);
        }
    }

    private void ResumeInBackground()
    {
        if (Table is not { } table || _stopping || Interlocked.Exchange(ref _resuming, 1) != 0)
        {
            return;
        }

        Interlocked.Increment(ref _counters.Resumes);
        _ = Task.Run(async () =>
        {
            try
            {
                for (var attempt = 0; attempt < 20 && !_stopping && Connection.State == HubConnectionState.Connected; attempt++)
                {
                    try
                    {
                        await SubscribeAsync(table, Revision);
                        return;
                    }
                    catch (Exception ex) when (ex is HubException or IOException or InvalidOperationException or TaskCanceledException)
                    {
                        await Task.Delay(250);
                    }
                }

                Interlocked.Increment(ref _counters.ResumeFailures);
            }
            finally
            {
                Volatile.Write(ref _resuming, 0);
            }
        });
    }

    private Task OnClosedAsync(Exception? error)
    {
        if (_stopping)
        {
            return Task.CompletedTask;
        }

        Interlocked.Increment(ref _counters.Closes);
        if (error?.Message.Contains("slow_consumer", StringComparison.Ordinal) == true)
        {
            Interlocked.Increment(ref _counters.SlowConsumerCloses);
        }

        if (!AutoReconnect || Interlocked.Exchange(ref _reconnecting, 1) != 0)
        {
            return Task.CompletedTask;
        }

        _ = Task.Run(ReconnectAsync);
        return Task.CompletedTask;
    }

    private async Task ReconnectAsync()
    {
        var started = Stopwatch.StartNew();
        try
        {
            for (var attempt = 0; !_stopping && started.Elapsed < ReconnectDeadline; attempt++)
            {
                await Task.Delay(Math.Min(5000, 250 << Math.Min(attempt, 5)));
                try
                {
                    if (Connection.State == HubConnectionState.Disconnected)
                    {
                        await StartAsync(CancellationToken.None);
                    }

                    if (Table is { } table)
                    {
                        long held;
                        lock (_gate)
                        {
                            held = Revision;
                        }

                        await SubscribeAsync(table, held);
                    }

                    ResumedAt = Stopwatch.GetTimestamp();
                    Interlocked.Increment(ref _counters.Reconnects);
                    return;
                }
                catch (Exception) when (!_stopping)
                {
                    // Not up yet, or not ready (not_ready while its change stream starts): try again.
                }
            }

            if (!_stopping)
            {
                Interlocked.Increment(ref _counters.ReconnectFailures);
            }
        }
        finally
        {
            Volatile.Write(ref _reconnecting, 0);
        }
    }
}

/// <summary>A key as a client holds it: its revision, its value when it is a JSON integer, and whether it is live.</summary>
internal readonly record struct Held(long Revision, long? Number, bool Live);

/// <summary>The parts of protocol.md's Entry the load generator needs (the value only when it is an integer).</summary>
internal sealed class Change
{
    public string Key { get; init; } = "";

    public string Op { get; init; } = "";

    public long Revision { get; init; }

    public bool? Unversioned { get; init; }

    [JsonConverter(typeof(IntegerOrSkip))]
    public long? Value { get; init; }
}

internal sealed class ChangesFrame
{
    public string Table { get; init; } = "";

    public long Revision { get; init; }

    public long After { get; init; }

    public List<Change> Changes { get; init; } = [];
}

internal sealed class SubscribeReply
{
    public string Table { get; init; } = "";

    public long Revision { get; init; }

    public List<Change> Entries { get; init; } = [];

    public bool Complete { get; init; }

    public bool Reset { get; init; }

    public string Mode { get; init; } = "";

    public int Subscribers { get; init; }
}

internal sealed class ProgressFrame
{
    public string Table { get; init; } = "";

    public long Revision { get; init; }
}

internal sealed class ResyncFrame
{
    public string Table { get; init; } = "";

    public string Reason { get; init; } = "";
}

/// <summary>Reads a JSON integer; skips any other value (objects, strings) without allocating it.</summary>
internal sealed class IntegerOrSkip : JsonConverter<long?>
{
    public override long? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var value))
        {
            return value;
        }

        reader.Skip();
        return null;
    }

    public override void Write(Utf8JsonWriter writer, long? value, JsonSerializerOptions options)
    {
        if (value is { } v)
        {
            writer.WriteNumberValue(v);
        }
        else
        {
            writer.WriteNullValue();
        }
    }
}

/// <summary>A client of the stock SignalR baseline: joins group "g" and counts the messages it receives.</summary>
internal sealed class StockClient : IAsyncDisposable
{
    public StockClient(string baseUrl, StockCounters counters)
    {
        Connection = BenchClient.Build(baseUrl + "/hubs/stock");
        Connection.On<StockMessage>("m", m =>
        {
            var now = Stopwatch.GetTimestamp();
            Interlocked.Increment(ref counters.Received);
            counters.OnMessage?.Invoke(m, now);
        });
    }

    public HubConnection Connection { get; }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Connection.DisposeAsync();
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or InvalidOperationException)
        {
        }
    }
}

internal sealed class StockMessage
{
    public int Seq { get; init; }

    public long Ts { get; init; }

    public string Data { get; init; } = "";
}

internal sealed class StockCounters
{
    public long Received;

    public Action<StockMessage, long>? OnMessage { get; set; }
}
