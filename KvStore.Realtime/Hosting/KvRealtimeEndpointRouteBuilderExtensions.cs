using System.Text.Json;
using KvStore.Realtime.Http;
using KvStore.Realtime.Hubs;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the KvStore hub, HTTP API and health endpoints.</summary>
public static class KvRealtimeEndpointRouteBuilderExtensions
{
    /// <summary>Maps the realtime hub (contract: docs/protocol.md) at <paramref name="pattern"/>, e.g. <c>/hubs/kv</c>.</summary>
    public static HubEndpointConventionBuilder MapKvHub(this IEndpointRouteBuilder endpoints, string pattern = "/hubs/kv")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        return endpoints.MapHub<KvHub>(pattern);
    }

    /// <summary>Maps the HTTP API under <paramref name="prefix"/>, e.g. <c>/v1</c>.</summary>
    public static RouteGroupBuilder MapKvApi(this IEndpointRouteBuilder endpoints, string prefix = "/v1")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        return KvHttpApi.Map(endpoints, prefix);
    }

    /// <summary>
    /// Maps <c>/healthz</c> (the process is up), <c>/readyz</c> (database and change stream state, as JSON)
    /// and <c>/metrics</c> (a JSON snapshot of the KvStore meters).
    /// </summary>
    public static IEndpointRouteBuilder MapKvHealth(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        endpoints.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false });
        endpoints.MapHealthChecks("/readyz", new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains("ready"),
            ResponseWriter = WriteReadinessAsync,
        });
        endpoints.MapGet("/metrics", (KvMetricsSnapshot metrics) => Results.Json(metrics.Read()));
        return endpoints;
    }

    private static Task WriteReadinessAsync(HttpContext http, HealthReport report)
    {
        http.Response.ContentType = "application/json";
        var body = new
        {
            status = report.Status.ToString().ToLowerInvariant(),
            checks = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString().ToLowerInvariant(), e.Value.Description, e.Value.Data }),
        };
        return JsonSerializer.SerializeAsync(http.Response.Body, body, JsonSerializerOptions.Web, http.RequestAborted);
    }
}
