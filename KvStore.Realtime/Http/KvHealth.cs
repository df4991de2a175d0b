using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using KvStore.Realtime.Publishing;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace KvStore.Realtime.Http;

/// <summary>
/// Ready when the database answers with the right schema and, where this process runs the publisher,
/// the change stream is streaming, or is a standby whose subscribers another process's reader serves (backplane).
/// </summary>
internal sealed class KvReadinessCheck(KvStoreClient kv, KvChangePublisher publisher) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object>();
        try
        {
            await kv.EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
            await kv.GetTableRevisionAsync("kvstore.health", cancellationToken).ConfigureAwait(false);
            data["database"] = "ok";
        }
        catch (Exception ex) when (ex is KvStoreException or MySqlConnector.MySqlException or InvalidOperationException)
        {
            data["database"] = ex.Message;
            return HealthCheckResult.Unhealthy("The database is not reachable or has the wrong schema.", ex, data);
        }

        if (publisher.SourceStatus is { } status)
        {
            data["cdc"] = status.State;
            if (status.LagSeconds is { } lag)
            {
                data["cdcLagSeconds"] = lag;
            }

            if (status.LastError is { } error)
            {
                data["cdcLastError"] = error;
            }

            if (status.State is "reconnecting")
            {
                return HealthCheckResult.Unhealthy("The change stream is not streaming: reconnecting", data: data);
            }

            if (publisher.NotDeliveringReason is { } reason)
            {
                return HealthCheckResult.Unhealthy("Subscribers of this node would not get every change: " + reason, data: data);
            }
        }
        else
        {
            data["cdc"] = "not in this process";
        }

        return HealthCheckResult.Healthy("ready", data);
    }
}

/// <summary>Aggregates the KvStore meters in-process for the JSON <c>/metrics</c> endpoint (OpenTelemetry can read the same meters).</summary>
internal sealed class KvMetricsSnapshot : IDisposable
{
    private static readonly string[] Meters = ["KvStore", "KvStore.Cdc", "KvStore.Realtime"];
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, double> _values = new(StringComparer.Ordinal);

    public KvMetricsSnapshot()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (Meters.Contains(instrument.Meter.Name))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => Record(instrument, value));
        _listener.SetMeasurementEventCallback<double>((instrument, value, _, _) => Record(instrument, value));
        _listener.SetMeasurementEventCallback<int>((instrument, value, _, _) => Record(instrument, value));
        _listener.Start();
    }

    public IReadOnlyDictionary<string, double> Read()
    {
        _listener.RecordObservableInstruments();
        return new SortedDictionary<string, double>(_values, StringComparer.Ordinal);
    }

    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, double value)
    {
        if (instrument is Histogram<double> or Histogram<long>)
        {
            _values.AddOrUpdate(instrument.Name + ".count", 1, (_, c) => c + 1);
            _values[instrument.Name + ".last"] = value;
        }
        else if (instrument.GetType().Name.StartsWith("Observable", StringComparison.Ordinal) || instrument.GetType().Name.StartsWith("Gauge", StringComparison.Ordinal))
        {
            _values[instrument.Name] = value;
        }
        else
        {
            _values.AddOrUpdate(instrument.Name, value, (_, c) => c + value);
        }
    }
}
