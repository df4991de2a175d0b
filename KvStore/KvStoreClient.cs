using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using KvStore.Diagnostics;
using KvStore.Resilience;
using KvStore.Storage;
using KvStore.Validation;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using MySqlConnector;
using Polly;
using Polly.Retry;

namespace KvStore;

/// <summary>
/// The KvStore client: thread-safe, create one per database and share it (or register it with
/// <c>services.AddKvStore(...)</c>). It pools connections through a <see cref="MySqlDataSource"/>.
/// </summary>
public sealed class KvStoreClient : IKvStore, IAsyncDisposable, IDisposable
{
    private readonly KvStoreOptions _options;
    private readonly MySqlDataSource _dataSource;
    private readonly MySqlDataSource _readSource;
    private readonly ResiliencePipeline _retry;
    private readonly ILogger _logger;
    private readonly PutCoalescer _puts;
    private Task? _schemaCheck;
    private long _schemaCheckStarted;

    /// <summary>
    /// How long a schema mismatch is remembered before the next operation checks again: a database
    /// migrated while the client runs is picked up without a restart, and a wrong schema costs at most
    /// one check per interval.
    /// </summary>
    internal static readonly TimeSpan SchemaRecheckInterval = TimeSpan.FromSeconds(5);

    /// <summary>Creates a client; <paramref name="options"/> are validated (see <see cref="KvStoreOptions"/>).</summary>
    public KvStoreClient(KvStoreOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = KvStoreOptionsValidator.Check(options);
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(nameof(KvStoreOptions), typeof(KvStoreOptions), failures);
        }

        _options = options;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<KvStoreClient>();
        var builder = new MySqlConnectionStringBuilder(options.ConnectionString)
        {
            // Session state (isolation level, the put's @kv_put_* variables) must not leak between pooled uses.
            ConnectionReset = true,
            // The put reads the session variables its trigger sets (KvSql.FastPut); every value is still a parameter.
            AllowUserVariables = true,
            AllowLoadLocalInfile = false,
        };
        _dataSource = new MySqlDataSourceBuilder(builder.ConnectionString)
            .UseLoggerFactory(loggerFactory)
            .Build();

        // Single-statement autocommit reads (get, get many, table revision) leave nothing behind on a
        // session: no transaction, no variables. Their own pool skips the reset a pooled connection
        // otherwise gets between uses, a round trip that costs about as much as the read itself.
        _readSource = new MySqlDataSourceBuilder(new MySqlConnectionStringBuilder(builder.ConnectionString)
            {
                ConnectionReset = false,
                AllowUserVariables = false,
            }.ConnectionString)
            .UseLoggerFactory(loggerFactory)
            .Build();
        _retry = new ResiliencePipelineBuilder { TimeProvider = options.TimeProvider }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<KvTransientException>(),
                MaxRetryAttempts = options.MaxRetryAttempts,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryBaseDelay,
                MaxDelay = TimeSpan.FromSeconds(2),
                OnRetry = args =>
                {
                    var reason = args.Outcome.Exception is KvTransientException t ? t.Reason : "transient";
                    KvStoreTelemetry.Retries.Add(1, new KeyValuePair<string, object?>("reason", reason));
                    Log.Retrying(_logger, "operation", string.Empty, reason, args.AttemptNumber + 1);
                    return default;
                },
            })
            .Build();
        _puts = new PutCoalescer(FastPutAsync, RunPutGroupAsync, RejectPut, options.TimeProvider, options.MaxQueuedPuts);
    }

    /// <summary>Creates a client from dependency-injection options.</summary>
    public KvStoreClient(IOptions<KvStoreOptions> options, ILoggerFactory loggerFactory)
        : this((options ?? throw new ArgumentNullException(nameof(options))).Value, loggerFactory)
    {
    }

    /// <summary>The options this client was created with.</summary>
    public KvStoreOptions Options => _options;

    /// <summary>
    /// Checks that the database schema matches this library version; every operation does this once
    /// by itself, so calling it is only useful to fail fast at start-up.
    /// </summary>
    /// <exception cref="KvStoreException">Code <see cref="KvErrorCodes.SchemaMismatch"/>, with what the DBA must run. A mismatch is remembered for 5 seconds; after that the next operation checks again (a migration applied meanwhile is picked up).</exception>
    public async Task EnsureSchemaAsync(CancellationToken cancellationToken = default)
    {
        var check = Volatile.Read(ref _schemaCheck);
        if (check is null || (check.IsFaulted && _options.TimeProvider.GetElapsedTime(Interlocked.Read(ref _schemaCheckStarted)) >= SchemaRecheckInterval))
        {
            // Callers racing here may each check once; the check is a single read.
            Interlocked.Exchange(ref _schemaCheckStarted, _options.TimeProvider.GetTimestamp());
            check = VerifySchemaAsync();
            Volatile.Write(ref _schemaCheck, check);
        }

        try
        {
            await check.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not KvStoreException and not OperationCanceledException)
        {
            // A failure to connect is not remembered: the next operation checks again.
            _ = Interlocked.CompareExchange(ref _schemaCheck, null, check);
            throw;
        }
    }

    /// <inheritdoc />
    public async Task<KvEntry?> GetAsync(string table, string key, CancellationToken cancellationToken = default)
    {
        KvValidator.Table(table);
        var keyBytes = KvValidator.Key(key);
        return await ExecuteReadAsync("get", table, async (connection, ct) =>
        {
            using var command = new MySqlCommand(KvSql.Get, connection);
            command.Parameters.AddWithValue("@t", table);
            command.Parameters.AddWithValue("@k", keyBytes);
            using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            return await reader.ReadAsync(ct).ConfigureAwait(false) ? EntryRow.Read(reader).ToEntry(table, key) : null;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<KvEntry<T>?> GetAsync<T>(string table, string key, CancellationToken cancellationToken = default)
    {
        var entry = await GetAsync(table, key, cancellationToken).ConfigureAwait(false);
        return entry is null ? null : new KvEntry<T>(entry, entry.GetValue<T>(_options.JsonSerializerOptions));
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<KvEntry>> GetManyAsync(string table, IEnumerable<string> keys, CancellationToken cancellationToken = default)
    {
        KvValidator.Table(table);
        ArgumentNullException.ThrowIfNull(keys);
        var distinct = keys.Distinct(StringComparer.Ordinal).ToList();
        if (distinct.Count > _options.MaxPageSize)
        {
            throw new KvValidationException(KvErrorCodes.InvalidArgument, nameof(keys), $"At most {_options.MaxPageSize} keys can be read at once; got {distinct.Count}.");
        }

        var keyBytes = distinct.Select(k => KvValidator.Key(k, nameof(keys))).ToList();
        if (keyBytes.Count == 0)
        {
            return [];
        }

        return await ExecuteReadAsync("get_many", table, async (connection, ct) =>
        {
            using var command = new MySqlCommand(WithKeyList(KvSql.GetMany, keyBytes.Count), connection);
            command.Parameters.AddWithValue("@t", table);
            AddKeyList(command, keyBytes);
            var result = new List<KvEntry>(keyBytes.Count);
            using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                result.Add(EntryRow.Read(reader).ToEntry(table));
            }

            return (IReadOnlyList<KvEntry>)result;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<KvPage> ListAsync(string table, string? prefix = null, string? after = null, int limit = 100, CancellationToken cancellationToken = default)
    {
        KvValidator.Table(table);
        KvValidator.Limit(limit, _options.MaxPageSize);
        var prefixBytes = string.IsNullOrEmpty(prefix) ? [] : KvValidator.Key(prefix, nameof(prefix));
        var afterBytes = string.IsNullOrEmpty(after) ? [] : KvValidator.Key(after, nameof(after));
        var prefixEnd = PrefixEnd(prefixBytes);

        return await ExecuteAsync("list", table, async (connection, ct) =>
        {
            using var command = new MySqlCommand(
                KvSql.BeginSnapshot + ";" + KvSql.TableRevision + ";" + (prefixEnd is null ? KvSql.ListPageNoPrefixEnd : KvSql.ListPage) + ";COMMIT",
                connection);
            command.Parameters.AddWithValue("@t", table);
            command.Parameters.AddWithValue("@after", afterBytes);
            command.Parameters.AddWithValue("@prefix", prefixBytes);
            command.Parameters.AddWithValue("@prefixEnd", prefixEnd ?? []);
            command.Parameters.AddWithValue("@limit", limit + 1);
            using var reader = await ExecuteSnapshotAsync(command, ct).ConfigureAwait(false);
            var revision = await reader.ReadAsync(ct).ConfigureAwait(false) ? (long)reader.GetUInt64(0) : 0;
            await reader.NextResultAsync(ct).ConfigureAwait(false);
            var entries = new List<KvEntry>(Math.Min(limit, 256));
            var more = false;
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                if (entries.Count == limit)
                {
                    more = true;
                    break;
                }

                entries.Add(EntryRow.Read(reader).ToEntry(table));
            }

            await DrainAsync(reader, ct).ConfigureAwait(false);
            return new KvPage(entries, revision, more ? entries[^1].Key : null);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<long> GetTableRevisionAsync(string table, CancellationToken cancellationToken = default)
    {
        KvValidator.Table(table);
        return await ExecuteReadAsync("table_revision", table, async (connection, ct) =>
        {
            using var command = new MySqlCommand(KvSql.TableRevision, connection);
            command.Parameters.AddWithValue("@t", table);
            using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            return await reader.ReadAsync(ct).ConfigureAwait(false) ? (long)reader.GetUInt64(0) : 0L;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<KvChanges> GetChangesAsync(string table, long afterRevision, int limit = 1000, CancellationToken cancellationToken = default)
    {
        KvValidator.Table(table);
        KvValidator.Revision(afterRevision, nameof(afterRevision));
        KvValidator.Limit(limit, _options.MaxPageSize);
        return await ExecuteAsync("changes", table, async (connection, ct) =>
        {
            using var command = new MySqlCommand(
                KvSql.BeginSnapshot + ";" + KvSql.TableRevision + ";" + KvSql.ChangesAfter + ";COMMIT", connection);
            command.Parameters.AddWithValue("@t", table);
            command.Parameters.AddWithValue("@after", afterRevision);
            command.Parameters.AddWithValue("@limit", limit + 1);
            using var reader = await ExecuteSnapshotAsync(command, ct).ConfigureAwait(false);
            long revision = 0, purged = 0;
            if (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                revision = (long)reader.GetUInt64(0);
                purged = (long)reader.GetUInt64(1);
            }

            await reader.NextResultAsync(ct).ConfigureAwait(false);
            var changes = new List<KvEntry>();
            var more = false;
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                if (changes.Count == limit)
                {
                    more = true;
                    break;
                }

                changes.Add(EntryRow.Read(reader).ToEntry(table));
            }

            await DrainAsync(reader, ct).ConfigureAwait(false);
            return new KvChanges(changes, revision, afterRevision >= purged, more);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public Task<KvEntry> PutAsync(string table, string key, JsonElement value, KvPutOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (value.ValueKind == JsonValueKind.Undefined)
        {
            throw new KvValidationException(KvErrorCodes.InvalidJson, nameof(value), "The value is an undefined JsonElement (default(JsonElement)).");
        }

        return PutJsonAsync(table, key, JsonSerializer.SerializeToUtf8Bytes(value), options, cancellationToken);
    }

    /// <inheritdoc />
    public Task<KvEntry> PutAsync<T>(string table, string key, T value, KvPutOptions? options = null, CancellationToken cancellationToken = default) =>
        PutJsonAsync(table, key, JsonSerializer.SerializeToUtf8Bytes(value, _options.JsonSerializerOptions), options, cancellationToken);

    /// <inheritdoc />
    public async Task<KvEntry> PutJsonAsync(string table, string key, ReadOnlyMemory<byte> utf8Json, KvPutOptions? options = null, CancellationToken cancellationToken = default)
    {
        KvValidator.Table(table);
        var keyBytes = KvValidator.Key(key);
        var element = KvValidator.Json(utf8Json.Span, _options.MaxValueBytes);
        var ttl = KvValidator.Ttl(options?.Ttl, _options.MaxTtl);
        KvValidator.Revision(options?.IfRevision);
        if (options is { IfAbsent: true, IfRevision: > 0 })
        {
            throw new KvValidationException(KvErrorCodes.InvalidArgument, nameof(options), "IfAbsent and a non-zero IfRevision contradict each other.");
        }

        var value = utf8Json.ToArray();
        if (options is null || (options.IfRevision is null && !options.IfAbsent))
        {
            return await _puts.PutAsync(new PendingPut(table, key, keyBytes, value, element, ttl, cancellationToken)).ConfigureAwait(false);
        }

        var expected = options.IfAbsent ? 0 : options.IfRevision;
        var result = await WriteAsync("put", table, [keyBytes], state =>
        {
            var current = state.Live(keyBytes);
            CheckRevision(table, key, expected, current, options.IfAbsent);
            return [state.Put(keyBytes, key, value, ttl, current)];
        }, cancellationToken).ConfigureAwait(false);
        return result![0];
    }

    /// <inheritdoc />
    public async Task<KvEntry?> DeleteAsync(string table, string key, long? ifRevision = null, CancellationToken cancellationToken = default)
    {
        KvValidator.Table(table);
        var keyBytes = KvValidator.Key(key);
        KvValidator.Revision(ifRevision);
        var result = await WriteAsync("delete", table, [keyBytes], state =>
        {
            var current = state.Live(keyBytes);
            CheckRevision(table, key, ifRevision, current, ifAbsent: false);
            return current is null ? null : [state.Tombstone(keyBytes, key, current, KvEntryState.Deleted)];
        }, cancellationToken).ConfigureAwait(false);
        return result?[0];
    }

    /// <inheritdoc />
    public Task<KvEntry> SetTtlAsync(string table, string key, TimeSpan ttl, long? ifRevision = null, CancellationToken cancellationToken = default)
    {
        KvValidator.Ttl(ttl, _options.MaxTtl);
        return ChangeTtlAsync("set_ttl", table, key, ttl, ifRevision, cancellationToken);
    }

    /// <inheritdoc />
    public Task<KvEntry> PersistAsync(string table, string key, long? ifRevision = null, CancellationToken cancellationToken = default) =>
        ChangeTtlAsync("persist", table, key, null, ifRevision, cancellationToken);

    /// <inheritdoc />
    public async Task<KvEntry> IncrementAsync(string table, string key, long delta, CancellationToken cancellationToken = default)
    {
        KvValidator.Table(table);
        var keyBytes = KvValidator.Key(key);
        var result = await WriteAsync("increment", table, [keyBytes], state =>
        {
            var current = state.Live(keyBytes);
            long next = delta;
            if (current is not null)
            {
                if (!TryReadInteger(current.Value!, out var value))
                {
                    throw new KvStoreException(KvErrorCodes.NotAnInteger, $"Key '{key}' in table '{table}' holds a value that is not a JSON integer; it cannot be incremented.");
                }

                try
                {
                    next = checked(value + delta);
                }
                catch (OverflowException)
                {
                    throw new KvStoreException(KvErrorCodes.Overflow, $"Incrementing key '{key}' in table '{table}' ({value}) by {delta} overflows a 64-bit integer.");
                }
            }

            var json = Encoding.UTF8.GetBytes(next.ToString(CultureInfo.InvariantCulture));
            return [state.Put(keyBytes, key, json, ttl: null, current, keepTtl: true)];
        }, cancellationToken).ConfigureAwait(false);
        return result![0];
    }

    /// <inheritdoc />
    public async Task<KvCommitResult> CommitAsync(KvBatch batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        KvValidator.Table(batch.Table, "batch.Table");
        var ops = batch.Operations;
        if (ops.Count == 0 || ops.Count > _options.MaxBatchOperations)
        {
            throw new KvValidationException(KvErrorCodes.InvalidArgument, nameof(batch), $"A batch needs 1 to {_options.MaxBatchOperations} operations; it has {ops.Count}.");
        }

        var keys = new List<byte[]>(ops.Count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var values = new byte[]?[ops.Count];
        long totalBytes = 0;
        for (var i = 0; i < ops.Count; i++)
        {
            var op = ops[i];
            var name = $"batch.Operations[{i}]";
            keys.Add(KvValidator.Key(op.Key, name + ".Key"));
            if (!seen.Add(op.Key))
            {
                throw new KvValidationException(KvErrorCodes.InvalidArgument, name + ".Key", $"Key '{op.Key}' appears twice in the batch; each key may be changed once per batch.");
            }

            KvValidator.Revision(op.IfRevision, name + ".IfRevision");
            if (op.Kind == KvBatchOperationKind.Put)
            {
                KvValidator.Json(op.Utf8Json.Span, _options.MaxValueBytes, name + ".Value");
                KvValidator.Ttl(op.PutOptions?.Ttl, _options.MaxTtl, name + ".Ttl");
                if (op.PutOptions is { IfAbsent: true, IfRevision: > 0 })
                {
                    throw new KvValidationException(KvErrorCodes.InvalidArgument, name, "IfAbsent and a non-zero IfRevision contradict each other.");
                }

                values[i] = op.Utf8Json.ToArray();
                totalBytes += values[i]!.Length;
            }
        }

        if (totalBytes > KvStoreOptions.HardMaxValueBytes)
        {
            throw new KvValidationException(KvErrorCodes.ValueTooLarge, nameof(batch), $"The batch carries {totalBytes} bytes of values; the limit is {KvStoreOptions.HardMaxValueBytes}.");
        }

        var entries = await WriteAsync("commit", batch.Table, keys, state =>
        {
            var planned = new List<PlannedWrite>(ops.Count);
            for (var i = 0; i < ops.Count; i++)
            {
                var op = ops[i];
                var current = state.Live(keys[i]);
                if (op.Kind == KvBatchOperationKind.Put)
                {
                    var ifAbsent = op.PutOptions?.IfAbsent == true;
                    CheckRevision(batch.Table, op.Key, ifAbsent ? 0 : op.IfRevision, current, ifAbsent);
                    planned.Add(state.Put(keys[i], op.Key, values[i]!, op.PutOptions?.Ttl, current));
                }
                else
                {
                    CheckRevision(batch.Table, op.Key, op.IfRevision, current, ifAbsent: false);
                    if (current is null)
                    {
                        throw new KvStoreException(KvErrorCodes.NotFound, $"Key '{op.Key}' in table '{batch.Table}' does not exist; the batch deletes only existing keys.");
                    }

                    planned.Add(state.Tombstone(keys[i], op.Key, current, KvEntryState.Deleted));
                }
            }

            return planned;
        }, cancellationToken).ConfigureAwait(false);
        return new KvCommitResult(entries![^1].Revision, entries);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _dataSource.Dispose();
        _readSource.Dispose();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _dataSource.DisposeAsync().ConfigureAwait(false);
        await _readSource.DisposeAsync().ConfigureAwait(false);
    }

    internal MySqlDataSource DataSource => _dataSource;

    internal ILogger Logger => _logger;

    private async Task<KvEntry> ChangeTtlAsync(string operation, string table, string key, TimeSpan? ttl, long? ifRevision, CancellationToken cancellationToken)
    {
        KvValidator.Table(table);
        var keyBytes = KvValidator.Key(key);
        KvValidator.Revision(ifRevision);
        var result = await WriteAsync(operation, table, [keyBytes], state =>
        {
            var current = state.Live(keyBytes);
            CheckRevision(table, key, ifRevision, current, ifAbsent: false);
            if (current is null)
            {
                throw new KvStoreException(KvErrorCodes.NotFound, $"Key '{key}' in table '{table}' does not exist (or has expired); its TTL cannot be changed.");
            }

            return [state.Put(keyBytes, key, current.Value!, ttl, current)];
        }, cancellationToken).ConfigureAwait(false);
        return result![0];
    }

    private static void CheckRevision(string table, string key, long? expected, EntryRow? current, bool ifAbsent)
    {
        var currentRevision = current?.Revision ?? 0;
        if (ifAbsent && current is not null)
        {
            throw new KvConflictException(table, key, null, currentRevision);
        }

        if (expected is { } rev && rev != currentRevision)
        {
            throw new KvConflictException(table, key, rev, currentRevision);
        }
    }

    private static bool TryReadInteger(byte[] json, out long value)
    {
        var reader = new Utf8JsonReader(json);
        value = 0;
        if (!reader.Read() || reader.TokenType != JsonTokenType.Number)
        {
            return false;
        }

        // 5.0 and 1e3 are numbers but not integers: only plain digit sequences qualify.
        return reader.ValueSpan.IndexOfAny((byte)'.', (byte)'e', (byte)'E') < 0 && reader.TryGetInt64(out value) && !reader.Read();
    }

    /// <summary>Runs a command that starts with <see cref="KvSql.BeginSnapshot"/>; the reader is positioned after its barrier result.</summary>
    private static async Task<MySqlDataReader> ExecuteSnapshotAsync(MySqlCommand command, CancellationToken ct)
    {
        var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await reader.NextResultAsync(ct).ConfigureAwait(false);
        return reader;
    }

    private async Task<KvEntry> FastPutAsync(PendingPut put, CancellationToken cancellationToken)
    {
        // One autocommit statement: a server error rolls it back by itself, so there is no transaction to end here.
        var entries = await ExecuteAsync("put", put.Table, async (connection, ct) =>
        {
            using var command = new MySqlCommand(KvSql.FastPut, connection);
            AddPutParameters(command, put, string.Empty);
            try
            {
                return await RunCommitAsync(command, "put", put.Table, async reader =>
                {
                    await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false);
                    return new List<KvEntry> { ReadPutResult(reader, put, first: 0) };
                }).ConfigureAwait(false);
            }
            catch (MySqlException ex) when (ex.ErrorCode == MySqlErrorCode.ColumnCannotBeNull)
            {
                // The entry went in with rev NULL and nothing gave it a revision: the trigger is gone.
                throw new KvStoreException(
                    KvErrorCodes.SchemaMismatch,
                    "The database lacks KvStore's kv_entries_put_revision trigger (was it restored without triggers?), so puts cannot take " +
                    "revisions; nothing was written. Apply KvStore/Schema/Migrations/V002__put_revision_trigger.sql (or schema.sql) again " +
                    "with the mariadb/mysql client: it is safe to re-run.",
                    ex);
            }
        }, cancellationToken).ConfigureAwait(false);
        return entries[0];
    }

    private static void AddPutParameters(MySqlCommand command, PendingPut put, string suffix)
    {
        command.Parameters.AddWithValue("@t" + suffix, put.Table);
        command.Parameters.AddWithValue("@k" + suffix, put.KeyBytes);
        command.Parameters.AddWithValue("@v" + suffix, put.Value);
        command.Parameters.AddWithValue("@ttl" + suffix, put.Ttl is { } t ? (long)(t.Ticks / 10) : null);
    }

    /// <summary>A put's entry from its read-back row: rev, created_rev, created_at, updated_at, expires_at from column <paramref name="first"/> on.</summary>
    private static KvEntry ReadPutResult(MySqlDataReader reader, PendingPut put, int first) => new(
        put.Table,
        put.Key,
        put.Element,
        (long)reader.GetUInt64(first),
        (long)reader.GetUInt64(first + 1),
        EntryRow.Utc(reader.GetDateTime(first + 2)),
        EntryRow.Utc(reader.GetDateTime(first + 3)),
        reader.IsDBNull(first + 4) ? null : EntryRow.Utc(reader.GetDateTime(first + 4)));

    /// <summary>
    /// Runs queued unconditional puts (at least two; the coalescer runs a put claimed alone in a slot)
    /// as one transaction and completes each caller with exactly what its own put would have returned
    /// (<see cref="PutCoalescer"/>). Round trip 1 locks the tables' revision rows with SKIP LOCKED and
    /// reads their revisions, so the group never waits for another writer; puts whose table row is busy
    /// or does not exist yet run alone at once (<see cref="PutAloneAsync"/>). The group then gives each
    /// put the next revision of its table in arrival order (as a conditional write does) and round trip 2
    /// writes the revision rows and the entries (one multi-row statement each), reads the entries back
    /// and commits; once claimed, the group runs to its end whatever its callers' tokens. Nothing
    /// committed (a server error stops the batch before COMMIT): every put runs alone, with its retries
    /// and its caller's cancellation, so one failing put fails only its caller. A connection failure
    /// during the commit round trip: every caller gets <see cref="KvErrorCodes.OutcomeUnknown"/>, as a
    /// lone put would.
    /// </summary>
    private async Task RunPutGroupAsync(List<PendingPut> group)
    {
        using var activity = KvStoreTelemetry.ActivitySource.StartActivity("kvstore.put_group", ActivityKind.Client);
        activity?.SetTag("db.system", "mysql");
        activity?.SetTag("kvstore.puts", group.Count);
        var pending = group;
        var settled = false; // every caller of the group completed: nothing may run again
        try
        {
            await EnsureSchemaAsync(CancellationToken.None).ConfigureAwait(false);
            var connection = await _dataSource.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                var commitSent = false;
                try
                {
                    var tables = group.Select(p => p.Table).Distinct(StringComparer.Ordinal).ToList();
                    var revisions = new Dictionary<string, long>(StringComparer.Ordinal);
                    using (var command = new MySqlCommand(WithList(KvSql.LockTablesSkipLocked, "@names", "@name", tables.Count), connection))
                    {
                        for (var i = 0; i < tables.Count; i++)
                        {
                            command.Parameters.AddWithValue("@name" + i.ToString(CultureInfo.InvariantCulture), tables[i]);
                        }

                        using var reader = await command.ExecuteReaderAsync(CancellationToken.None).ConfigureAwait(false);
                        while (await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false))
                        {
                            revisions.Add(reader.GetString(0), (long)reader.GetUInt64(1));
                        }
                    }

                    foreach (var put in group.Where(p => !revisions.ContainsKey(p.Table)))
                    {
                        _ = PutAloneAsync(put, rowBusy: true);
                    }

                    pending = group.Where(p => revisions.ContainsKey(p.Table)).ToList();
                    if (pending.Count == 0)
                    {
                        await RollbackAsync(connection).ConfigureAwait(false);
                        return;
                    }

                    using var commit = BuildPutGroupCommand(connection, pending, revisions);
                    List<KvEntry> entries;
                    try
                    {
                        commitSent = true;
                        entries = await RunCommitAsync(commit, "put", pending[0].Table, reader => ReadPutGroupAsync(reader, pending)).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is MySqlException or KvTransientException)
                    {
                        // The server stopped the batch before COMMIT: release the locks before the puts run alone.
                        await RollbackAsync(connection).ConfigureAwait(false);
                        throw;
                    }
                    catch (Exception ex)
                    {
                        // COMMIT may have run: no caller may be told "not applied" or be retried.
                        var unknown = ex as KvStoreException ?? new KvStoreException(
                            KvErrorCodes.OutcomeUnknown,
                            "A coalesced put failed while committing; the write may or may not have been applied. Read the key (its revision tells) before deciding to repeat it.",
                            ex);
                        settled = true;
                        foreach (var put in pending)
                        {
                            put.Completion.TrySetException(unknown);
                        }

                        Log.OutcomeUnknown(_logger, "put", pending[0].Table, unknown);
                        foreach (var put in pending)
                        {
                            RecordOperation("put", "unknown", put.Started);
                        }

                        return;
                    }

                    settled = true;
                    for (var i = 0; i < pending.Count; i++)
                    {
                        pending[i].Completion.TrySetResult(entries[i]);
                    }

                    foreach (var put in pending)
                    {
                        RecordOperation("put", "ok", put.Started);
                    }

                    return;
                }
                finally
                {
                    if (!commitSent)
                    {
                        // Round trip 1 may have locked table rows: never hand the connection back to the
                        // pool with them (the pool resets a connection only when it is next opened).
                        await RollbackAsync(connection).ConfigureAwait(false);
                    }
                }
            }
        }
        catch (Exception ex)
        {
            if (settled)
            {
                // Thrown after every caller was completed (e.g. by a logging or metrics listener): the
                // group committed or is unknown, so it must not run again.
                return;
            }

            // Nothing of the group committed (the server stopped the batch before COMMIT, or the
            // connection failed before it was sent; the pool's reset rolls back what is open).
            activity?.SetTag("kvstore.fallback", ex.GetType().Name);
        }

        foreach (var put in pending)
        {
            _ = PutAloneAsync(put, rowBusy: false);
        }
    }

    /// <summary>
    /// Round trip 2 of a put group: new table revisions, every entry with its revision in one
    /// upsert (the same ON DUPLICATE KEY UPDATE rule as <see cref="KvSql.FastPut"/>), the read-back, COMMIT.
    /// </summary>
    private static MySqlCommand BuildPutGroupCommand(MySqlConnection connection, List<PendingPut> pending, Dictionary<string, long> revisions)
    {
        var command = new MySqlCommand { Connection = connection };
        var entries = new StringBuilder(pending.Count * 160);
        var readBack = new StringBuilder(pending.Count * 40);
        for (var i = 0; i < pending.Count; i++)
        {
            var put = pending[i];
            var revision = revisions[put.Table] + 1;
            revisions[put.Table] = revision;
            put.Revision = revision;
            var n = i.ToString(CultureInfo.InvariantCulture);
            entries.Append(i == 0 ? string.Empty : ",").Append(KvSql.PutGroupRow(n));
            readBack.Append(i == 0 ? string.Empty : " OR ").Append(CultureInfo.InvariantCulture, $"(tbl = @t{n} AND k = @k{n})");
            AddPutParameters(command, put, n);
            command.Parameters.AddWithValue("@r" + n, revision);
        }

        var tables = new StringBuilder(revisions.Count * 24);
        var j = 0;
        foreach (var (table, revision) in revisions)
        {
            if (!pending.Exists(p => string.Equals(p.Table, table, StringComparison.Ordinal)))
            {
                continue;
            }

            var n = j++.ToString(CultureInfo.InvariantCulture);
            tables.Append(tables.Length == 0 ? string.Empty : ",").Append(CultureInfo.InvariantCulture, $"(@n{n},@nr{n},0,UTC_TIMESTAMP(6))");
            command.Parameters.AddWithValue("@n" + n, table);
            command.Parameters.AddWithValue("@nr" + n, revision);
        }

        command.CommandText = KvSql.PutGroup(tables.ToString(), entries.ToString(), readBack.ToString());
        return command;
    }

    /// <summary>Matches the read-back rows to the puts by (table, revision), which is unique.</summary>
    private static async Task<List<KvEntry>> ReadPutGroupAsync(MySqlDataReader reader, List<PendingPut> pending)
    {
        var rows = new Dictionary<(string Table, long Revision), KvEntry>(pending.Count);
        var byRevision = pending.ToDictionary(p => (p.Table, p.Revision));
        while (await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            var key = (reader.GetString(0), (long)reader.GetUInt64(1));
            if (byRevision.TryGetValue(key, out var put))
            {
                // Column 0 is tbl; the row was matched by its rev (column 1), which is put.Revision.
                rows[key] = ReadPutResult(reader, put, first: 1);
            }
        }

        return pending.Select(p => rows.TryGetValue((p.Table, p.Revision), out var entry)
            ? entry
            : throw new InvalidOperationException($"The coalesced put of key '{p.Key}' in table '{p.Table}' was not read back.")).ToList();
    }

    /// <summary>
    /// Runs a claimed put that its group did not take on its own and completes its caller; never throws.
    /// It honours its caller's token as a lone put does (cancelled before it starts, while it waits for a
    /// connection or a retry; a statement holding COMMIT runs to its end). <paramref name="rowBusy"/>:
    /// another transaction held the table row when the group locked rows (or the row does not exist
    /// yet), so the put will likely wait for it; when its caller can cancel, it then waits in a round trip
    /// without COMMIT (<see cref="PutAfterRowLockAsync"/>), so that cancellation stops the wait with nothing
    /// written rather than only after innodb_lock_wait_timeout.
    /// </summary>
    private Task PutAloneAsync(PendingPut put, bool rowBusy) =>
        put.CompleteWithAsync(rowBusy && put.CancellationToken.CanBeCanceled
            ? PutAfterRowLockAsync(put)
            : FastPutAsync(put, put.CancellationToken));

    /// <summary>
    /// An unconditional put on the conditional write's path: round trip 1 locks the table row and reads
    /// the key (cancellable, nothing written yet), round trip 2 writes and commits. The key's current row
    /// only decides whether the put (re-)creates it, as in <see cref="KvSql.FastPut"/>.
    /// </summary>
    private async Task<KvEntry> PutAfterRowLockAsync(PendingPut put)
    {
        var result = await WriteAsync("put", put.Table, [put.KeyBytes], state =>
            [state.Put(put.KeyBytes, put.Key, put.Value, put.Ttl, state.Live(put.KeyBytes))], put.CancellationToken).ConfigureAwait(false);
        return result![0];
    }

    /// <summary>A put refused because the put queue is full: logged, counted, and nothing was sent.</summary>
    private KvStoreException RejectPut(PendingPut put, int maxQueued)
    {
        Log.PutQueueFull(_logger, put.Table, maxQueued);
        RecordOperation("put", "rejected", put.Started);
        return new KvStoreException(
            KvErrorCodes.Unavailable,
            $"The put of key '{put.Key}' in table '{put.Table}' was rejected: {maxQueued} puts already wait in this client's put queue " +
            "(KvStoreOptions.MaxQueuedPuts), so the database is not keeping up with the write rate; nothing was written. Retry later.");
    }

    private static void RecordOperation(string operation, string outcome, long started)
    {
        var tags = new TagList { { "operation", operation }, { "outcome", outcome } };
        KvStoreTelemetry.Operations.Add(1, tags);
        KvStoreTelemetry.OperationDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
    }

    /// <summary>
    /// The conditional write: round trip 1 locks the table row and reads the current rows; the pure
    /// <paramref name="plan"/> decides (or throws a conflict, rolling back); round trip 2 writes and commits.
    /// A null plan means "nothing to change": the transaction is rolled back and null returned.
    /// </summary>
    internal Task<IReadOnlyList<KvEntry>?> WriteAsync(string operation, string table, IReadOnlyList<byte[]> keys, Func<LockedState, List<PlannedWrite>?> plan, CancellationToken cancellationToken) =>
        InLockedTableAsync<IReadOnlyList<KvEntry>>(operation, table, keys, (state, connection) =>
        {
            var writes = plan(state);
            return writes is null || writes.Count == 0
                ? (null, null)
                : (BuildWriteCommand(connection, table, writes), writes.Select(w => w.ToEntry(table)).ToList());
        }, cancellationToken);

    /// <summary>
    /// Runs a write transaction on one table: round trip 1 begins, locks the table's kv_tables row
    /// (the one lock every KvStore write takes first) and reads the rows of <paramref name="keys"/> FOR UPDATE;
    /// <paramref name="decide"/> returns the commit round trip (its SQL must end in COMMIT) and the result,
    /// or a null command to roll back and return null.
    /// </summary>
    internal async Task<T?> InLockedTableAsync<T>(string operation, string table, IReadOnlyList<byte[]> keys, Func<LockedState, MySqlConnection, (MySqlCommand? Commit, T? Result)> decide, CancellationToken cancellationToken)
        where T : class
    {
        return await ExecuteAsync(operation, table, async (connection, ct) =>
        {
            var finished = false;
            try
            {
                LockedState state;
                using (var command = new MySqlCommand(WithKeyList(KvSql.LockTableAndRead, keys.Count), connection))
                {
                    command.Parameters.AddWithValue("@t", table);
                    AddKeyList(command, keys);
                    using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
                    await reader.ReadAsync(ct).ConfigureAwait(false);
                    state = new LockedState(table, (long)reader.GetUInt64(0), reader.GetDateTime(1));
                    await reader.NextResultAsync(ct).ConfigureAwait(false);
                    while (await reader.ReadAsync(ct).ConfigureAwait(false))
                    {
                        state.Add(EntryRow.Read(reader));
                    }
                }

                var (commit, result) = decide(state, connection);
                if (commit is null)
                {
                    return null;
                }

                await using (commit.ConfigureAwait(false))
                {
                    await RunCommitAsync(commit, operation, table, _ => Task.FromResult(new List<KvEntry>())).ConfigureAwait(false);
                }

                finished = true;
                return result;
            }
            finally
            {
                if (!finished)
                {
                    await RollbackAsync(connection).ConfigureAwait(false);
                }
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    private static MySqlCommand BuildWriteCommand(MySqlConnection connection, string table, List<PlannedWrite> writes)
    {
        var sql = new StringBuilder(KvSql.UpdateTableRevision.Length + KvSql.UpsertEntriesPrefix.Length + (writes.Count * 64) + 256);
        sql.Append(KvSql.UpdateTableRevision).Append(KvSql.UpsertEntriesPrefix);
        var command = new MySqlCommand { Connection = connection };
        command.Parameters.AddWithValue("@t", table);
        command.Parameters.AddWithValue("@rev", writes[^1].Revision);
        for (var i = 0; i < writes.Count; i++)
        {
            var w = writes[i];
            if (i > 0)
            {
                sql.Append(',');
            }

            sql.Append(CultureInfo.InvariantCulture, $"(@t,@k{i},@v{i},@r{i},@cr{i},@ca{i},@ua{i},@ea{i},@s{i})");
            command.Parameters.AddWithValue($"@k{i}", w.Key);
            command.Parameters.AddWithValue($"@v{i}", w.Value);
            command.Parameters.AddWithValue($"@r{i}", w.Revision);
            command.Parameters.AddWithValue($"@cr{i}", w.CreatedRevision);
            command.Parameters.AddWithValue($"@ca{i}", w.CreatedAt);
            command.Parameters.AddWithValue($"@ua{i}", w.UpdatedAt);
            command.Parameters.AddWithValue($"@ea{i}", w.ExpiresAt);
            command.Parameters.AddWithValue($"@s{i}", (byte)w.State);
        }

        sql.Append(KvSql.UpsertEntriesSuffix).Append(KvSql.Commit);
        command.CommandText = sql.ToString();
        return command;
    }

    /// <summary>
    /// Executes the round trip that contains COMMIT and reads every result, so that a failing COMMIT
    /// surfaces here. Failures in this phase are classified as "outcome unknown" unless the server
    /// reported an error (which stops the batch before COMMIT).
    /// </summary>
    private static async Task<List<KvEntry>> RunCommitAsync(MySqlCommand command, string operation, string table, Func<MySqlDataReader, Task<List<KvEntry>>> read)
    {
        try
        {
            // Once COMMIT is on the wire, cancellation must not abandon it: wait for the server's answer.
            using var reader = await command.ExecuteReaderAsync(CancellationToken.None).ConfigureAwait(false);
            var result = await read(reader).ConfigureAwait(false);
            await DrainAsync(reader, CancellationToken.None).ConfigureAwait(false);
            return result;
        }
        catch (Exception ex) when (KvFailure.Classify(ex, KvPhase.Commit, operation, table) is { } mapped)
        {
            throw mapped;
        }
    }

    private static async Task DrainAsync(MySqlDataReader reader, CancellationToken ct)
    {
        while (await reader.NextResultAsync(ct).ConfigureAwait(false))
        {
        }
    }

    private static async Task RollbackAsync(MySqlConnection connection)
    {
        if (connection.State != System.Data.ConnectionState.Open)
        {
            return;
        }

        try
        {
            using var rollback = new MySqlCommand(KvSql.Rollback, connection);
            await rollback.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (MySqlException)
        {
            // The connection is unusable; closing it makes the server roll back.
        }
        catch (InvalidOperationException)
        {
        }
    }

    /// <summary>Opens a pooled connection and runs <paramref name="body"/> under the retry pipeline, with metrics.</summary>
    private Task<T> ExecuteAsync<T>(string operation, string table, Func<MySqlConnection, CancellationToken, Task<T>> body, CancellationToken cancellationToken) =>
        ExecuteOnAsync(_dataSource, operation, table, body, cancellationToken);

    /// <summary>
    /// <see cref="ExecuteAsync{T}"/> for a read that is one autocommit SELECT and leaves no session state
    /// (no transaction, no variables), on the pool whose connections are not reset between uses.
    /// </summary>
    private Task<T> ExecuteReadAsync<T>(string operation, string table, Func<MySqlConnection, CancellationToken, Task<T>> body, CancellationToken cancellationToken) =>
        ExecuteOnAsync(_readSource, operation, table, body, cancellationToken);

    private async Task<T> ExecuteOnAsync<T>(MySqlDataSource source, string operation, string table, Func<MySqlConnection, CancellationToken, Task<T>> body, CancellationToken cancellationToken)
    {
        using var activity = KvStoreTelemetry.ActivitySource.StartActivity("kvstore." + operation, ActivityKind.Client);
        activity?.SetTag("db.system", "mysql");
        activity?.SetTag("kvstore.table", table);
        var started = Stopwatch.GetTimestamp();
        var outcome = "error";
        try
        {
            var result = await _retry.ExecuteAsync(
                async ct =>
                {
                    MySqlConnection connection;
                    try
                    {
                        await EnsureSchemaAsync(ct).ConfigureAwait(false);
                        connection = await source.OpenConnectionAsync(ct).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (KvFailure.Classify(ex, KvPhase.Connect, operation, table) is KvTransientException transient)
                    {
                        throw transient;
                    }

                    await using (connection.ConfigureAwait(false))
                    {
                        try
                        {
                            return await body(connection, ct).ConfigureAwait(false);
                        }
                        catch (Exception ex) when (ex is not KvStoreException and not KvTransientException && KvFailure.Classify(ex, KvPhase.BeforeCommit, operation, table) is { } mapped)
                        {
                            throw mapped;
                        }
                    }
                },
                cancellationToken).ConfigureAwait(false);
            outcome = "ok";
            return result;
        }
        catch (KvTransientException ex)
        {
            throw new KvStoreException(
                KvErrorCodes.Unavailable,
                $"{operation} on table '{table}' failed after {_options.MaxRetryAttempts} retries ({ex.Reason}); nothing was committed.",
                ex.InnerException);
        }
        catch (KvConflictException)
        {
            outcome = "conflict";
            throw;
        }
        catch (KvStoreException ex) when (ex.Code == KvErrorCodes.OutcomeUnknown)
        {
            Log.OutcomeUnknown(_logger, operation, table, ex);
            outcome = "unknown";
            throw;
        }
        finally
        {
            RecordOperation(operation, outcome, started);
        }
    }

    private async Task VerifySchemaAsync()
    {
        var version = await KvSchema.GetVersionAsync(_dataSource, CancellationToken.None).ConfigureAwait(false);
        KvSchema.ThrowIfIncompatible(version);
        Log.SchemaVerified(_logger, version);
    }

    private static string WithKeyList(string sql, int count) => WithList(sql, "@keys", "@key", count);

    /// <summary>Expands the <paramref name="placeholder"/> of an IN list into <paramref name="prefix"/>0, <paramref name="prefix"/>1, ...</summary>
    private static string WithList(string sql, string placeholder, string prefix, int count)
    {
        var names = new StringBuilder(count * (prefix.Length + 3));
        for (var i = 0; i < count; i++)
        {
            names.Append(i == 0 ? prefix : "," + prefix).Append(i.ToString(CultureInfo.InvariantCulture));
        }

        return sql.Replace(placeholder, names.ToString(), StringComparison.Ordinal);
    }

    private static void AddKeyList(MySqlCommand command, IReadOnlyList<byte[]> keys)
    {
        for (var i = 0; i < keys.Count; i++)
        {
            command.Parameters.AddWithValue("@key" + i.ToString(CultureInfo.InvariantCulture), keys[i]);
        }
    }

    /// <summary>The smallest byte string greater than every string starting with <paramref name="prefix"/>; null if none.</summary>
    private static byte[]? PrefixEnd(byte[] prefix)
    {
        for (var i = prefix.Length - 1; i >= 0; i--)
        {
            if (prefix[i] != 0xFF)
            {
                var end = prefix[..(i + 1)];
                end[i]++;
                return end;
            }
        }

        return null;
    }
}
