using System.Globalization;
using System.Text;
using Dapper;
using KvStore.Diagnostics;
using KvStore.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MySqlConnector;

namespace KvStore.Expiry;

/// <summary>
/// Turns expired keys into tombstones (a change with a new revision, so subscribers see <c>expired</c>)
/// and purges tombstones older than the retention window, recording each table's purge horizon.
/// One instance is active across processes: it holds <c>GET_LOCK</c> on a dedicated connection, and
/// when that connection dies the lock is free for a standby. Work goes in small per-table batches in
/// key order, and every transaction locks the table row first, like foreground writes, so the two
/// never deadlock.
/// </summary>
internal sealed class KvExpiryService : BackgroundService
{
    private const string DueKeys =
        "SELECT tbl, k FROM kv_entries WHERE expires_at <= UTC_TIMESTAMP(6) AND state = 0 ORDER BY expires_at LIMIT @limit";

    private const string OldTombstones =
        "SELECT tbl, k FROM kv_entries WHERE tombstoned_at < UTC_TIMESTAMP(6) - INTERVAL @retention MICROSECOND ORDER BY tombstoned_at LIMIT @limit";

    private readonly KvStoreClient _client;
    private readonly KvExpiryOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private volatile bool _isActive;

    public KvExpiryService(KvStoreClient client, IOptions<KvExpiryOptions> options, ILogger<KvExpiryService> logger)
    {
        _client = client;
        _options = options.Value;
        _logger = logger;
        _time = client.Options.TimeProvider;
    }

    /// <summary>True while this instance holds the lock and does the work.</summary>
    public bool IsActive => _isActive;

    /// <summary>Raised when <see cref="IsActive"/> changes (tests await it instead of sleeping).</summary>
    public event Action<bool>? ActiveChanged;

    /// <summary>Raised after every completed cycle with the keys expired and purged.</summary>
    public event Action<int, int>? CycleCompleted;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var leaderLock = new LeaderLock(_client.Options.ConnectionString, _options.LockName);
        await using var leaderLockScope = leaderLock.ConfigureAwait(false);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!await leaderLock.TryAcquireAsync(stoppingToken).ConfigureAwait(false))
                {
                    await Task.Delay(_options.Interval, _time, stoppingToken).ConfigureAwait(false);
                    continue;
                }

                SetActive(true);
                Log.ExpiryLeader(_logger, _options.LockName);
                try
                {
                    // Still the holder? If the lock connection died, another instance may already be active.
                    while (!stoppingToken.IsCancellationRequested && await leaderLock.StillHeldAsync(stoppingToken).ConfigureAwait(false))
                    {
                        var (expired, purged) = await RunCycleAsync(stoppingToken).ConfigureAwait(false);
                        if (expired + purged < _options.BatchSize)
                        {
                            await Task.Delay(_options.Interval, _time, stoppingToken).ConfigureAwait(false);
                        }
                    }
                }
                finally
                {
                    SetActive(false);
                    await leaderLock.ReleaseAsync().ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (ex is MySqlException or KvStoreException or IOException or InvalidOperationException)
            {
                Log.ExpiryCycleFailed(_logger, ex);
                try
                {
                    await Task.Delay(_options.Interval, _time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
    }

    /// <summary>One cycle: expire due keys, then purge old tombstones, each in bounded batches.</summary>
    internal async Task<(int Expired, int Purged)> RunCycleAsync(CancellationToken cancellationToken)
    {
        var expired = 0;
        for (var batch = 0; batch < _options.MaxBatchesPerCycle; batch++)
        {
            var due = await FindAsync(DueKeys, new { limit = _options.BatchSize }, cancellationToken).ConfigureAwait(false);
            if (due.Count == 0)
            {
                break;
            }

            foreach (var group in due.GroupBy(r => r.Table, StringComparer.Ordinal))
            {
                expired += await ExpireAsync(group.Key, SortedKeys(group), cancellationToken).ConfigureAwait(false);
            }

            if (due.Count < _options.BatchSize)
            {
                break;
            }
        }

        var purged = 0;
        var retention = _options.TombstoneRetention.Ticks / 10;
        for (var batch = 0; batch < _options.MaxBatchesPerCycle; batch++)
        {
            var old = await FindAsync(OldTombstones, new { limit = _options.BatchSize, retention }, cancellationToken).ConfigureAwait(false);
            if (old.Count == 0)
            {
                break;
            }

            foreach (var group in old.GroupBy(r => r.Table, StringComparer.Ordinal))
            {
                purged += await PurgeAsync(group.Key, SortedKeys(group), retention, cancellationToken).ConfigureAwait(false);
            }

            if (old.Count < _options.BatchSize)
            {
                break;
            }
        }

        KvStoreTelemetry.Expired.Add(expired);
        KvStoreTelemetry.Purged.Add(purged);
        Log.ExpiryCycle(_logger, expired, purged);
        CycleCompleted?.Invoke(expired, purged);
        return (expired, purged);
    }

    private async Task<int> ExpireAsync(string table, List<byte[]> keys, CancellationToken cancellationToken)
    {
        var entries = await _client.WriteAsync("expire", table, keys, state =>
        {
            var writes = new List<PlannedWrite>();
            foreach (var key in keys)
            {
                if (state.Row(key) is { State: KvEntryState.Live, ExpiresAt: { } at } row && at <= state.Now)
                {
                    writes.Add(state.Tombstone(key, Encoding.UTF8.GetString(key), row, KvEntryState.Expired));
                }
            }

            return writes;
        }, cancellationToken).ConfigureAwait(false);
        return entries?.Count ?? 0;
    }

    private async Task<int> PurgeAsync(string table, List<byte[]> keys, long retentionMicros, CancellationToken cancellationToken)
    {
        var purged = await _client.InLockedTableAsync<List<EntryRow>>("purge", table, keys, (state, connection) =>
        {
            var horizon = state.Now.AddTicks(-retentionMicros * 10);
            var doomed = state.Rows.Where(r => r.State != KvEntryState.Live && r.UpdatedAt < horizon).OrderBy(r => r.Key, ByteOrder.Instance).ToList();
            if (doomed.Count == 0)
            {
                return (null, null);
            }

            var command = new MySqlCommand { Connection = connection };
            var sql = new StringBuilder("DELETE FROM kv_entries WHERE tbl = @t AND state <> 0 AND k IN (");
            for (var i = 0; i < doomed.Count; i++)
            {
                sql.Append(i == 0 ? "@p" : ",@p").Append(i.ToString(CultureInfo.InvariantCulture));
                command.Parameters.AddWithValue("@p" + i.ToString(CultureInfo.InvariantCulture), doomed[i].Key);
            }

            sql.Append(");UPDATE kv_tables SET purged_rev = GREATEST(purged_rev, @horizon) WHERE name = @t;COMMIT");
            command.Parameters.AddWithValue("@t", table);
            command.Parameters.AddWithValue("@horizon", doomed.Max(r => r.Revision));
            command.CommandText = sql.ToString();
            return (command, doomed);
        }, cancellationToken).ConfigureAwait(false);
        return purged?.Count ?? 0;
    }

    private async Task<List<(string Table, byte[] Key)>> FindAsync(string sql, object parameters, CancellationToken cancellationToken)
    {
        var connection = await _client.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connectionScope = connection.ConfigureAwait(false);
        var rows = await connection.QueryAsync<(string, byte[])>(new CommandDefinition(sql, parameters, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return rows.ToList();
    }

    private static List<byte[]> SortedKeys(IEnumerable<(string Table, byte[] Key)> rows) =>
        rows.Select(r => r.Key).Order(ByteOrder.Instance).ToList();

    private void SetActive(bool active)
    {
        if (_isActive != active)
        {
            _isActive = active;
            ActiveChanged?.Invoke(active);
        }
    }

    /// <summary>Byte-wise order, the order of VARBINARY keys in the primary key.</summary>
    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static readonly ByteOrder Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
