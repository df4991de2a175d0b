using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Dapper;
using KvStore.Cdc.Diagnostics;
using KvStore.Cdc.Events;
using KvStore.Cdc.Protocol;
using KvStore.Cdc.Streaming;
using KvStore.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using MySqlConnector;
using Polly;
using Polly.Retry;

namespace KvStore.Cdc;

/// <summary>
/// The committed-change stream of one KvStore database: tails the binlog as a replica and yields one
/// <see cref="KvChangeBatch"/> per committed transaction that touched <c>kv_entries</c>, in commit order.
/// One reader per <see cref="KvChangeStreamOptions.StreamName"/> is active across processes (the others
/// wait as standbys); acknowledged positions are persisted in <c>kv_cdc_checkpoints</c>, and a restart
/// resumes right after the last persisted one (at-least-once: consumers drop duplicates by revision).
/// </summary>
public sealed class KvChangeStream : IKvChangeSource, IAsyncDisposable
{
    private readonly KvChangeStreamOptions _options;
    private readonly string _database;
    private readonly CheckpointStore _checkpoints;
    private readonly LeaderLock _lock;
    private readonly ILogger _logger;
    private readonly uint _serverId;
    private readonly TimeProvider _time;
    private readonly object _ackGate = new();
    private KvStreamPosition? _acked;
    private KvStreamPosition? _persisted;
    private uint _currentServerId;
    private int _reading;
    private int _disposed;
    private bool _resetRequested;
    private BinlogStartPosition? _resumeFrom;
    private bool _persistStart;
    private bool _isMariaDb;
    private int _failuresWithoutProgress;
    private volatile KvChangeSourceStatus _status = new("starting", null, null);
    private long _lastEventUnixSeconds;
    private bool _caughtUp;
    private readonly TaskCompletionSource _streaming = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _flusher;
    private CancellationTokenSource? _flusherStop;

    /// <summary>Creates a stream; nothing connects until <see cref="ReadAsync"/> is enumerated.</summary>
    public KvChangeStream(KvChangeStreamOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var builder = new MySqlConnectionStringBuilder(options.ConnectionString);
        if (string.IsNullOrEmpty(builder.Database))
        {
            throw new ArgumentException("KvChangeStreamOptions.ConnectionString must name the KvStore database (Database=...).", nameof(options));
        }

        if (string.IsNullOrWhiteSpace(options.StreamName) || options.StreamName.Length > 64)
        {
            throw new ArgumentException("KvChangeStreamOptions.StreamName must be 1 to 64 characters.", nameof(options));
        }

        _options = options;
        _database = builder.Database;
        _time = options.TimeProvider;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<KvChangeStream>();
        _checkpoints = new CheckpointStore(options.ConnectionString, options.StreamName);
        _lock = new LeaderLock(options.ConnectionString, $"kvstore.cdc.{_database}.{options.StreamName}");
        _serverId = options.ServerId ?? DeriveServerId(_database + "/" + options.StreamName);
    }

    /// <summary>Creates a stream from dependency-injection options.</summary>
    public KvChangeStream(IOptions<KvChangeStreamOptions> options, ILoggerFactory loggerFactory)
        : this((options ?? throw new ArgumentNullException(nameof(options))).Value, loggerFactory)
    {
    }

    /// <inheritdoc />
    public KvChangeSourceStatus Status
    {
        get
        {
            var status = _status;
            double? lag = status.State != "streaming" ? null
                : _caughtUp ? 0
                : Volatile.Read(ref _lastEventUnixSeconds) is > 0 and var ts ? Math.Max(0, _time.GetUtcNow().ToUnixTimeSeconds() - ts) : null;
            return status with { LagSeconds = lag };
        }
    }

    /// <summary>Completes when this instance first streams as the active reader (tests and start-up probes await it).</summary>
    internal Task Streaming => _streaming.Task;

    /// <summary>The last position persisted to <c>kv_cdc_checkpoints</c> by this instance, if any.</summary>
    public KvStreamPosition? PersistedPosition => _persisted;

    /// <inheritdoc />
    public async IAsyncEnumerable<KvChangeBatch> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _reading, 1) != 0)
        {
            throw new InvalidOperationException("A KvChangeStream has one reader at a time.");
        }

        var channel = Channel.CreateBounded<KvChangeBatch>(new BoundedChannelOptions(Math.Max(1, _options.MaxBufferedBatches))
        {
            SingleReader = true,
            SingleWriter = true,
        });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var producer = Task.Run(() => ProduceAsync(channel.Writer, stop.Token), CancellationToken.None);
        try
        {
            await foreach (var batch in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return batch;
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await producer.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            Volatile.Write(ref _reading, 0);
        }
    }

    /// <inheritdoc />
    public async ValueTask AcknowledgeAsync(KvChangeBatch batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        lock (_ackGate)
        {
            _acked = batch.Position;
        }

        if (_options.CheckpointInterval <= TimeSpan.Zero)
        {
            try
            {
                await FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is MySqlException or IOException or InvalidOperationException)
            {
                // The position stays recorded; the next acknowledgement or DisposeAsync persists it.
                Log.CheckpointFailed(_logger, _options.StreamName, ex);
            }

            return;
        }

        if (_flusher is null)
        {
            lock (_ackGate)
            {
                if (_flusher is null)
                {
                    _flusherStop = new CancellationTokenSource();
                    _flusher = Task.Run(() => RunFlusherAsync(_flusherStop.Token), CancellationToken.None);
                }
            }
        }
    }

    /// <summary>Writes the latest acknowledged position to <c>kv_cdc_checkpoints</c> now.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        KvStreamPosition? acked;
        lock (_ackGate)
        {
            acked = _acked;
        }

        if (acked is null || acked == _persisted)
        {
            return;
        }

        await _checkpoints.SaveAsync(acked, _currentServerId, cancellationToken).ConfigureAwait(false);
        _persisted = acked;
    }

    /// <inheritdoc />
    public async ValueTask ResetToCurrentPositionAsync(CancellationToken cancellationToken = default)
    {
        lock (_ackGate)
        {
            _acked = null;
            _resetRequested = true;
        }

        await _checkpoints.DeleteAsync(cancellationToken).ConfigureAwait(false);
        _persisted = null;
    }

    /// <summary>Persists the last acknowledged position and releases the leader lock.</summary>
    public async ValueTask DisposeAsync()
    {
        // Idempotent: DI may dispose the same instance under two registrations.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_flusherStop is not null)
        {
            await _flusherStop.CancelAsync().ConfigureAwait(false);
            try
            {
                await _flusher!.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            _flusherStop.Dispose();
        }

        try
        {
            await FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (MySqlException ex)
        {
            Log.CheckpointFailed(_logger, _options.StreamName, ex);
        }

        await _lock.DisposeAsync().ConfigureAwait(false);
    }

    private async Task RunFlusherAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.CheckpointInterval, _time);
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            try
            {
                await FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is MySqlException or IOException or InvalidOperationException)
            {
                Log.CheckpointFailed(_logger, _options.StreamName, ex);
            }
        }
    }

    private async Task ProduceAsync(ChannelWriter<KvChangeBatch> writer, CancellationToken cancellationToken)
    {
        try
        {
            var loggedStandby = false;
            while (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    if (!await _lock.TryAcquireAsync(cancellationToken).ConfigureAwait(false))
                    {
                        _status = new KvChangeSourceStatus("standby", null, null);
                        if (!loggedStandby)
                        {
                            Log.Standby(_logger, _options.StreamName, _lock.Name);
                            loggedStandby = true;
                        }

                        await Task.Delay(_options.LeaderRetryInterval, _time, cancellationToken).ConfigureAwait(false);
                        continue;
                    }

                    loggedStandby = false;
                    CdcTelemetry.Takeovers.Add(1);
                    try
                    {
                        if (_options.CheckServerOnStart)
                        {
                            await CheckServerAsync(cancellationToken).ConfigureAwait(false);
                        }

                        _resumeFrom = await ResolveStartAsync(cancellationToken).ConfigureAwait(false);
                        Log.Leader(_logger, _options.StreamName, _resumeFrom.ToString());
                        await StreamAsLeaderAsync(writer, cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        await _lock.ReleaseAsync().ConfigureAwait(false);
                    }
                }
                catch (Exception ex) when (IsTransient(ex) && !cancellationToken.IsCancellationRequested)
                {
                    // The server is unreachable (restart, failover): compete for leadership again once it is back.
                    _status = new KvChangeSourceStatus("reconnecting", ex.Message, null);
                    CdcTelemetry.Reconnects.Add(1);
                    var delay = _options.MaxReconnectDelay < _options.LeaderRetryInterval ? _options.MaxReconnectDelay : _options.LeaderRetryInterval;
                    Log.Reconnecting(_logger, _options.StreamName, ex.GetType().Name, _resumeFrom?.ToString() ?? "checkpoint", delay, ex);
                    await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
                }
            }

            writer.TryComplete();
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            writer.TryComplete();
        }
        catch (Exception ex)
        {
            _status = new KvChangeSourceStatus("failed", ex.Message, null);
            writer.TryComplete(ex);
        }
    }

    /// <summary>Streams until leadership is lost (returns) or a fatal error (throws); reconnects on transient failures.</summary>
    private async Task StreamAsLeaderAsync(ChannelWriter<KvChangeBatch> writer, CancellationToken cancellationToken)
    {
        var retry = new ResiliencePipelineBuilder { TimeProvider = _time }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Exception>(IsTransient),
                MaxRetryAttempts = int.MaxValue,
                DelayGenerator = _ =>
                {
                    var attempt = Math.Min(Interlocked.Increment(ref _failuresWithoutProgress), 16);
                    var ceiling = Math.Min(_options.MaxReconnectDelay.TotalMilliseconds, _options.ReconnectBaseDelay.TotalMilliseconds * Math.Pow(2, attempt - 1));
                    return new ValueTask<TimeSpan?>(TimeSpan.FromMilliseconds((ceiling / 2) + (Random.Shared.NextDouble() * ceiling / 2)));
                },
                OnRetry = args =>
                {
                    CdcTelemetry.Reconnects.Add(1);
                    _status = new KvChangeSourceStatus("reconnecting", args.Outcome.Exception?.Message, null);
                    Log.Reconnecting(_logger, _options.StreamName, args.Outcome.Exception?.GetType().Name ?? "?", _resumeFrom?.ToString() ?? "now", args.RetryDelay, args.Outcome.Exception!);
                    return default;
                },
            })
            .Build();
        try
        {
            await retry.ExecuteAsync(async ct => await SessionAsync(writer, ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        }
        catch (LeadershipLostException)
        {
            Log.LeadershipLost(_logger, _options.StreamName);
        }
        catch (BinlogNotAvailableException ex)
        {
            Log.ResyncRequired(_logger, _options.StreamName, ex.ServerMessage);
            throw new KvResyncRequiredException(
                $"The binlog needed to continue from {_resumeFrom} is no longer on the server ({ex.ServerMessage}). Changes may have been missed: resynchronize consumers from the database.", ex);
        }
    }

    private static bool IsTransient(Exception ex) => ex switch
    {
        ReplicationException replication => replication.IsTransient,
        MySqlException mysql => mysql.IsTransient || mysql.ErrorCode is MySqlErrorCode.UnableToConnectToHost,
        IOException or SocketException or TimeoutException or EndOfStreamException => true,
        _ => false,
    };

    private async Task SessionAsync(ChannelWriter<KvChangeBatch> writer, CancellationToken cancellationToken)
    {
        var client = new BinlogClient(ClientOptions());
        var stream = await client.StartAsync(_resumeFrom!, cancellationToken).ConfigureAwait(false);
        await using var scope = stream.ConfigureAwait(false);
        if (_persistStart)
        {
            // First start (or after a reset): record where "now" was at once, so a crash before the
            // first acknowledgement cannot skip what was committed in between.
            var start = ToStreamPosition(stream);
            await _checkpoints.SaveAsync(start, _currentServerId, cancellationToken).ConfigureAwait(false);
            _persisted = start;
            _persistStart = false;
            _resumeFrom = ResumePoint(start);
        }

        var parser = new BinlogEventParser(new BinlogParserOptions { VerifyChecksums = false });
        var projector = new KvChangeProjector(_database);
        _status = new KvChangeSourceStatus("streaming", null, null);
        _streaming.TrySetResult();
        var lastLockCheck = _time.GetTimestamp();
        while (await stream.MoveNextAsync(cancellationToken).ConfigureAwait(false))
        {
            var raw = stream.Current;
            CdcTelemetry.Events.Add(1);
            CdcTelemetry.Bytes.Add(raw.Data.Length);
            if (_time.GetElapsedTime(lastLockCheck) >= _options.LeaderRetryInterval)
            {
                lastLockCheck = _time.GetTimestamp();
                if (!await _lock.StillHeldAsync(cancellationToken).ConfigureAwait(false))
                {
                    throw new LeadershipLostException();
                }
            }

            if (raw.IsHeartbeat)
            {
                _caughtUp = true;
                continue;
            }

            _caughtUp = false;
            if (raw.Header.Timestamp != 0)
            {
                Volatile.Write(ref _lastEventUnixSeconds, raw.Header.Timestamp);
            }

            if (raw.Header.Type != BinlogEventType.FormatDescription)
            {
                parser.SetChecksumAlgorithm(raw.ChecksumLength == 4 ? ChecksumAlgorithm.Crc32 : ChecksumAlgorithm.None);
            }

            var parsed = parser.Parse(raw.Data);
            if (projector.Accept(parsed) != KvChangeProjector.Boundary.End)
            {
                continue;
            }

            // A transaction boundary: from here a reconnect resumes without repeating or skipping.
            var position = ToStreamPosition(stream);
            _resumeFrom = ResumePoint(position);
            _failuresWithoutProgress = 0;
            var changes = projector.TakeChanges();
            if (changes.Count > 0)
            {
                await writer.WriteAsync(new KvChangeBatch(changes, position, DateTimeOffset.FromUnixTimeSeconds(raw.Header.Timestamp)), cancellationToken).ConfigureAwait(false);
                CdcTelemetry.Transactions.Add(1);
                CdcTelemetry.Changes.Add(changes.Count);
            }
        }
    }

    private async Task<BinlogStartPosition> ResolveStartAsync(CancellationToken cancellationToken)
    {
        bool reset;
        lock (_ackGate)
        {
            reset = _resetRequested;
            _resetRequested = false;
        }

        if (reset)
        {
            await _checkpoints.DeleteAsync(cancellationToken).ConfigureAwait(false);
        }

        var connection = new MySqlConnection(_options.ConnectionString);
        await using var scope = connection.ConfigureAwait(false);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        _currentServerId = await connection.ExecuteScalarAsync<uint>(new CommandDefinition("SELECT @@server_id", cancellationToken: cancellationToken)).ConfigureAwait(false);
        var isMariaDb = (await connection.ExecuteScalarAsync<string>(new CommandDefinition("SELECT VERSION()", cancellationToken: cancellationToken)).ConfigureAwait(false))!
            .Contains("MariaDB", StringComparison.OrdinalIgnoreCase);
        var stored = await _checkpoints.LoadAsync(cancellationToken).ConfigureAwait(false);
        _isMariaDb = isMariaDb;
        if (stored is null)
        {
            _persistStart = true;
            return BinlogStartPosition.Now;
        }

        if (!string.IsNullOrEmpty(stored.Gtid))
        {
            // GTIDs name the same transaction on every server, so this also survives a failover.
            return ResumePoint(stored.ToPosition());
        }

        if (stored.ServerId == _currentServerId || stored.ServerId is null)
        {
            var files = await connection.QueryAsync<string>(new CommandDefinition("SHOW BINARY LOGS", cancellationToken: cancellationToken)).ConfigureAwait(false);
            if (!files.Contains(stored.File, StringComparer.Ordinal))
            {
                var reason = $"binlog file {stored.File} was purged";
                Log.ResyncRequired(_logger, _options.StreamName, reason);
                throw new KvResyncRequiredException($"The checkpoint {stored.ToPosition()} points into {stored.File}, which the server has purged. Changes may have been missed: resynchronize consumers from the database.");
            }

            return BinlogStartPosition.FromFile(stored.File, (long)stored.BinlogOffset);
        }

        throw new KvResyncRequiredException(
            $"The checkpoint was written on server {stored.ServerId} without a GTID, and this is server {_currentServerId}: its file offsets mean nothing here. Resynchronize consumers from the database.");
    }

    private static KvStreamPosition ToStreamPosition(BinlogEventStream stream)
    {
        var checkpoint = stream.Checkpoint;
        var gtid = checkpoint.MariaDbGtid is { IsEmpty: false } mariaDb ? mariaDb.ToString()
            : checkpoint.MySqlGtid is { IsEmpty: false } mySql ? mySql.ToString()
            : null;
        return new KvStreamPosition(stream.Position.FileName, stream.Position.Position, gtid);
    }

    /// <summary>Where to continue after <paramref name="position"/>: by GTID when known (server-independent), else by file offset.</summary>
    private BinlogStartPosition ResumePoint(KvStreamPosition position) => position.Gtid is null
        ? BinlogStartPosition.FromFile(position.File, position.Offset)
        : _isMariaDb ? BinlogStartPosition.FromMariaDbGtid(position.Gtid) : BinlogStartPosition.FromMySqlGtidSet(position.Gtid);

    private async Task CheckServerAsync(CancellationToken cancellationToken)
    {
        var check = await KvSchema.CheckServerAsync(_options.ConnectionString, maxValueBytes: 0, cancellationToken).ConfigureAwait(false);
        var problems = check.Problems.Where(p => !p.StartsWith("max_allowed_packet", StringComparison.Ordinal)).ToList();
        var connection = new MySqlConnection(_options.ConnectionString);
        await using var scope = connection.ConfigureAwait(false);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        var grants = string.Join("\n", await connection.QueryAsync<string>(new CommandDefinition("SHOW GRANTS", cancellationToken: cancellationToken)).ConfigureAwait(false));
        var all = grants.Contains("ALL PRIVILEGES ON *.*", StringComparison.OrdinalIgnoreCase);
        if (!all && !grants.Contains("REPLICATION SLAVE", StringComparison.OrdinalIgnoreCase))
        {
            problems.Add("The user lacks REPLICATION SLAVE: GRANT REPLICATION SLAVE ON *.* TO <user>.");
        }

        if (!all && !grants.Contains("BINLOG MONITOR", StringComparison.OrdinalIgnoreCase) && !grants.Contains("REPLICATION CLIENT", StringComparison.OrdinalIgnoreCase)
            && !grants.Contains("SUPER", StringComparison.OrdinalIgnoreCase))
        {
            problems.Add(check.IsMariaDb
                ? "The user lacks BINLOG MONITOR: GRANT BINLOG MONITOR ON *.* TO <user>."
                : "The user lacks REPLICATION CLIENT: GRANT REPLICATION CLIENT ON *.* TO <user>.");
        }

        var version = await KvSchema.GetVersionAsync(_options.ConnectionString, cancellationToken).ConfigureAwait(false);
        if (version != KvSchema.CurrentVersion)
        {
            problems.Add($"The KvStore schema in '{_database}' is at version {version}, not {KvSchema.CurrentVersion}: run the migrations.");
        }

        if (problems.Count > 0)
        {
            throw new KvStoreException(
                "cdc_not_ready",
                $"The change stream cannot start on {check.ServerVersion}:{Environment.NewLine}- " + string.Join(Environment.NewLine + "- ", problems));
        }
    }

    private BinlogClientOptions ClientOptions()
    {
        var b = new MySqlConnectionStringBuilder(_options.ConnectionString);
        return new BinlogClientOptions
        {
            Host = b.Server,
            Port = (int)b.Port,
            UserName = b.UserID,
            Password = b.Password,
            SslMode = b.SslMode switch
            {
                MySqlSslMode.None => SslMode.None,
                MySqlSslMode.Preferred => SslMode.Preferred,
                MySqlSslMode.Required => SslMode.Required,
                MySqlSslMode.VerifyCA => SslMode.VerifyCA,
                _ => SslMode.VerifyFull,
            },
            SslCaFile = string.IsNullOrEmpty(b.SslCa) ? null : b.SslCa,
            DisableCertificateValidation = _options.DisableCertificateValidation,
            AllowPublicKeyRetrieval = _options.AllowPublicKeyRetrieval || b.AllowPublicKeyRetrieval,
            ServerId = _serverId,
            HeartbeatPeriod = _options.HeartbeatInterval,
            ReadTimeout = _options.HeartbeatInterval * 3,
            VerifyChecksums = _options.VerifyChecksums,
            TimeProvider = _time,
        };
    }

    private static uint DeriveServerId(string name)
    {
        // FNV-1a, folded into 1e6..2^31: stable per stream, unlikely to collide with real servers.
        var hash = 2166136261u;
        foreach (var c in name)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return 1_000_000u + (hash % 2_000_000_000u);
    }

    private sealed class LeadershipLostException() : Exception("The leader lock connection was lost.");
}
