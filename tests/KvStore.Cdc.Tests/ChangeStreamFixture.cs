using System.Threading.Channels;
using KvStore.TestInfrastructure;
using MySqlConnector;

namespace KvStore.Cdc.Tests;

/// <summary>A fresh KvStore database on the shared server, with a client, for change-stream tests.</summary>
public sealed class CdcDatabase : TestDatabase
{
    public KvStoreClient Client { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await KvSchema.MigrateAsync(ConnectionString);
        Client = new KvStoreClient(new KvStoreOptions { ConnectionString = ConnectionString, MaxValueBytes = KvStoreOptions.HardMaxValueBytes });
    }

    public KvChangeStream NewStream(string? name = null, Action<KvChangeStreamOptions>? configure = null) =>
        NewStream(ConnectionString, name, configure);

    public static KvChangeStream NewStream(string connectionString, string? name, Action<KvChangeStreamOptions>? configure = null)
    {
        var options = new KvChangeStreamOptions
        {
            ConnectionString = connectionString,
            StreamName = name ?? "s" + Guid.NewGuid().ToString("N")[..8],
            HeartbeatInterval = TimeSpan.FromMilliseconds(500),
            LeaderRetryInterval = TimeSpan.FromMilliseconds(200),
            CheckpointInterval = TimeSpan.Zero,
            ReconnectBaseDelay = TimeSpan.FromMilliseconds(50),
            MaxReconnectDelay = TimeSpan.FromMilliseconds(500),
        };
        configure?.Invoke(options);
        return new KvChangeStream(options);
    }

    public async Task ExecuteAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = new MySqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    public override async Task DisposeAsync()
    {
        await Client.DisposeAsync();
        await base.DisposeAsync();
    }
}

/// <summary>Consumes a change stream in the background; tests await batches with a deadline.</summary>
public sealed class StreamProbe : IAsyncDisposable
{
    private readonly Channel<KvChangeBatch> _batches = Channel.CreateUnbounded<KvChangeBatch>();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _pump;

    public StreamProbe(KvChangeStream stream, bool acknowledge = true)
    {
        Stream = stream;
        _pump = Task.Run(async () =>
        {
            try
            {
                await foreach (var batch in stream.ReadAsync(_stop.Token))
                {
                    if (acknowledge)
                    {
                        await stream.AcknowledgeAsync(batch);
                    }

                    await _batches.Writer.WriteAsync(batch);
                }

                _batches.Writer.TryComplete();
            }
            catch (OperationCanceledException)
            {
                _batches.Writer.TryComplete();
            }
            catch (Exception ex)
            {
                _batches.Writer.TryComplete(ex);
            }
        });
    }

    public KvChangeStream Stream { get; }

    public static async Task<StreamProbe> StartAsync(KvChangeStream stream, bool acknowledge = true)
    {
        var probe = new StreamProbe(stream, acknowledge);
        await Task.WhenAny(stream.Streaming, probe._pump).WaitAsync(TimeSpan.FromSeconds(30));
        if (probe._pump.IsCompleted && !stream.Streaming.IsCompleted)
        {
            await probe.NextAsync(); // surfaces the failure
        }

        return probe;
    }

    /// <summary>The next batch, or a TimeoutException.</summary>
    public async Task<KvChangeBatch> NextAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        try
        {
            return await _batches.Reader.ReadAsync(cts.Token);
        }
        catch (ChannelClosedException ex) when (ex.InnerException is not null)
        {
            throw ex.InnerException;
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"No change batch arrived in time (stream state: {Stream.Status}).");
        }
    }

    /// <summary>Batches until the changes of <paramref name="table"/> reach <paramref name="revision"/>.</summary>
    public async Task<List<KvChangeBatch>> UntilRevisionAsync(string table, long revision, TimeSpan? timeout = null)
    {
        var batches = new List<KvChangeBatch>();
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            var batch = await NextAsync(deadline - DateTime.UtcNow);
            batches.Add(batch);
            if (batch.Changes.Any(c => c.Table == table && c.Revision >= revision))
            {
                return batches;
            }
        }
    }

    /// <summary>Completes with the stream's failure, if it fails within the timeout.</summary>
    public async Task<Exception> FailureAsync(TimeSpan? timeout = null)
    {
        try
        {
            while (true)
            {
                await NextAsync(timeout);
            }
        }
        catch (TimeoutException)
        {
            throw;
        }
        catch (Exception ex)
        {
            return ex;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _pump;
        }
        catch (OperationCanceledException)
        {
        }

        await Stream.DisposeAsync();
        _stop.Dispose();
    }
}
