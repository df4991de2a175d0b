using System.Globalization;
using System.Text.Json;
using System.Threading.RateLimiting;
using KvStore.Realtime.Claps;
using KvStore.Realtime.Hubs;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace KvStore.Realtime.Http;

/// <summary>
/// The HTTP API (docs/protocol.md): entries, listing, changes, increments and batches. Writes answer
/// only after the commit, with the new revision (also as the ETag). Every error is a problem document.
/// </summary>
internal static class KvHttpApi
{
    public static RouteGroupBuilder Map(IEndpointRouteBuilder endpoints, string prefix)
    {
        var api = endpoints.MapGroup(prefix);
        api.AddEndpointFilter<KvHttpErrorFilter>();
        var tables = api.MapGroup("/tables/{table}");

        tables.MapGet("/entries/{key}", GetAsync);
        tables.MapGet("/entries", ListAsync);
        tables.MapGet("/changes", ChangesAsync);
        tables.MapPut("/entries/{key}", PutAsync).AddEndpointFilter<KvWriteRateFilter>();
        tables.MapDelete("/entries/{key}", DeleteAsync).AddEndpointFilter<KvWriteRateFilter>();
        tables.MapPost("/entries/{key}/increment", IncrementAsync).AddEndpointFilter<KvWriteRateFilter>();
        tables.MapPost("/commit", CommitAsync).AddEndpointFilter<KvWriteRateFilter>();
        return api;
    }

    private static async Task<IResult> GetAsync(string table, string key, HttpContext http, IKvStore kv, IKvAccessPolicy policy)
    {
        await AuthorizeAsync(policy.CanReadAsync(http.User, table, http.RequestAborted), "read", table).ConfigureAwait(false);
        key = RouteKey(key);
        var entry = await kv.GetAsync(table, key, http.RequestAborted).ConfigureAwait(false);
        if (entry is null)
        {
            return KvProblems.Create(StatusCodes.Status404NotFound, KvErrorCodes.NotFound, $"Key '{key}' does not exist in table '{table}'.");
        }

        SetETag(http, entry.Revision);
        return Results.Ok(KvEntryDto.From(entry));
    }

    private static async Task<IResult> ListAsync(string table, HttpContext http, IKvStore kv, IKvAccessPolicy policy, string? prefix = null, string? after = null, int? limit = null)
    {
        await AuthorizeAsync(policy.CanReadAsync(http.User, table, http.RequestAborted), "read", table).ConfigureAwait(false);
        var page = await kv.ListAsync(table, prefix, after, limit ?? 100, http.RequestAborted).ConfigureAwait(false);
        return Results.Ok(new KvPageDto(table, page.Revision, page.Entries.Select(KvEntryDto.From).ToList(), page.NextAfter));
    }

    private static async Task<IResult> ChangesAsync(string table, HttpContext http, IKvStore kv, IKvAccessPolicy policy, long? after = null, int? limit = null)
    {
        await AuthorizeAsync(policy.CanReadAsync(http.User, table, http.RequestAborted), "read", table).ConfigureAwait(false);
        var changes = await kv.GetChangesAsync(table, after ?? 0, limit ?? 1000, http.RequestAborted).ConfigureAwait(false);
        return Results.Ok(new KvChangesDto(table, changes.Revision, changes.Changes.Select(KvEntryDto.From).ToList(), changes.HistoryAvailable, changes.HasMore));
    }

    /// <summary>Body: <c>{"value": any, "ttlMs"?: n, "ifRevision"?: n, "ifAbsent"?: bool}</c>; or If-Match: "rev" / If-None-Match: *.</summary>
    private static async Task<IResult> PutAsync(string table, string key, HttpContext http, IKvStore kv, IKvAccessPolicy policy, IOptions<KvRealtimeOptions> options)
    {
        await AuthorizeAsync(policy.CanWriteAsync(http.User, table, http.RequestAborted), "write", table).ConfigureAwait(false);
        using var body = await ReadBodyAsync(http, options.Value.MaxMessageBytes).ConfigureAwait(false);
        var root = body.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("value", out var value))
        {
            throw new KvValidationException(KvRealtimeErrorCodes.InvalidRequest, "value", "The body must be a JSON object with a \"value\" property (and optional ttlMs, ifRevision, ifAbsent).");
        }

        var dto = new KvWriteOptionsDto(
            OptionalInt64(root, "ttlMs"),
            OptionalInt64(root, "ifRevision") ?? IfMatch(http),
            OptionalBool(root, "ifAbsent") ?? (http.Request.Headers.IfNoneMatch.ToString() == "*" ? true : null));
        key = RouteKey(key);
        var entry = await kv.PutAsync(table, key, value, KvHttpWriteOptions.Validate(dto), http.RequestAborted).ConfigureAwait(false);
        SetETag(http, entry.Revision);
        return Results.Ok(KvEntryDto.From(entry));
    }

    private static async Task<IResult> DeleteAsync(string table, string key, HttpContext http, IKvStore kv, IKvAccessPolicy policy, long? ifRevision = null)
    {
        await AuthorizeAsync(policy.CanWriteAsync(http.User, table, http.RequestAborted), "write", table).ConfigureAwait(false);
        key = RouteKey(key);
        var tombstone = await kv.DeleteAsync(table, key, ifRevision ?? IfMatch(http), http.RequestAborted).ConfigureAwait(false);
        if (tombstone is null)
        {
            return KvProblems.Create(StatusCodes.Status404NotFound, KvErrorCodes.NotFound, $"Key '{key}' does not exist in table '{table}'; nothing was deleted.");
        }

        return Results.Ok(new KvDeleteResultDto(table, key, true, tombstone.Revision));
    }

    /// <summary>Body (optional): <c>{"delta": n}</c>; default 1.</summary>
    private static async Task<IResult> IncrementAsync(string table, string key, HttpContext http, KvIncrementBatcher increments, IKvAccessPolicy policy, IOptions<KvRealtimeOptions> options)
    {
        await AuthorizeAsync(policy.CanWriteAsync(http.User, table, http.RequestAborted), "write", table).ConfigureAwait(false);
        long delta = 1;
        if (http.Request.ContentLength is > 0 || http.Request.Headers.TransferEncoding.Count > 0)
        {
            using var body = await ReadBodyAsync(http, 4096).ConfigureAwait(false);
            if (body.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new KvValidationException(KvRealtimeErrorCodes.InvalidRequest, "delta", "The body must be a JSON object like {\"delta\": 1}.");
            }

            delta = OptionalInt64(body.RootElement, "delta") ?? 1;
        }

        key = RouteKey(key);
        var entry = await increments.IncrementAsync(table, key, delta, http.RequestAborted).ConfigureAwait(false);
        SetETag(http, entry.Revision);
        return Results.Ok(KvEntryDto.From(entry));
    }

    /// <summary>Body: <c>{"operations": [{"op": "put"|"delete", "key": "...", "value"?: any, "ttlMs"?, "ifRevision"?, "ifAbsent"?}]}</c>.</summary>
    private static async Task<IResult> CommitAsync(string table, HttpContext http, IKvStore kv, IKvAccessPolicy policy, IOptions<KvRealtimeOptions> options)
    {
        await AuthorizeAsync(policy.CanWriteAsync(http.User, table, http.RequestAborted), "write", table).ConfigureAwait(false);
        using var body = await ReadBodyAsync(http, options.Value.MaxMessageBytes).ConfigureAwait(false);
        List<KvBatchOperationDto>? operations;
        try
        {
            operations = body.RootElement.ValueKind == JsonValueKind.Object && body.RootElement.TryGetProperty("operations", out var ops)
                ? ops.Deserialize<List<KvBatchOperationDto>>(JsonSerializerOptions.Web)
                : null;
        }
        catch (JsonException ex)
        {
            throw new KvValidationException(KvRealtimeErrorCodes.InvalidRequest, "operations", "The operations are malformed: " + ex.Message);
        }

        var result = await kv.CommitAsync(KvHttpWriteOptions.ToBatch(table, operations!), http.RequestAborted).ConfigureAwait(false);
        SetETag(http, result.Revision);
        return Results.Ok(new KvCommitResultDto(table, result.Revision, result.Entries.Select(KvEntryDto.From).ToList()));
    }

    private static async Task<JsonDocument> ReadBodyAsync(HttpContext http, long maxBytes)
    {
        if (http.Request.ContentLength > maxBytes)
        {
            throw new KvValidationException(KvErrorCodes.ValueTooLarge, "body", $"The body is {http.Request.ContentLength} bytes; the limit is {maxBytes}.");
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await http.Request.Body.ReadAsync(chunk, http.RequestAborted).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + read > maxBytes)
            {
                throw new KvValidationException(KvErrorCodes.ValueTooLarge, "body", $"The body is larger than the limit of {maxBytes} bytes.");
            }

            buffer.Write(chunk, 0, read);
        }

        if (buffer.Length == 0)
        {
            throw new KvValidationException(KvRealtimeErrorCodes.InvalidRequest, "body", "The request needs a JSON body.");
        }

        try
        {
            return JsonDocument.Parse(buffer.ToArray(), new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException ex)
        {
            throw new KvValidationException(KvErrorCodes.InvalidJson, "body", "The body is not valid JSON: " + ex.Message);
        }
    }

    private static long? OptionalInt64(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var n)
            ? n
            : throw new KvValidationException(KvErrorCodes.InvalidArgument, name, $"\"{name}\" must be an integer.");
    }

    private static bool? OptionalBool(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? value.GetBoolean()
            : throw new KvValidationException(KvErrorCodes.InvalidArgument, name, $"\"{name}\" must be true or false.");
    }

    /// <summary>If-Match: "17" (or 17, or W/"17") means "only at revision 17".</summary>
    private static long? IfMatch(HttpContext http)
    {
        var header = http.Request.Headers.IfMatch.ToString();
        if (string.IsNullOrEmpty(header))
        {
            return null;
        }

        var text = header.Trim();
        if (text.StartsWith("W/", StringComparison.Ordinal))
        {
            text = text[2..];
        }

        text = text.Trim('"');
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var rev)
            ? rev
            : throw new KvValidationException(KvErrorCodes.InvalidArgument, "If-Match", $"If-Match must be a revision like \"17\"; got {header}.");
    }

    /// <summary>Routing keeps %2F encoded in route values; keys may contain '/', so decode it here.</summary>
    private static string RouteKey(string key) =>
        key.Contains('%', StringComparison.Ordinal) ? key.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase) : key;

    private static void SetETag(HttpContext http, long revision) =>
        http.Response.Headers.ETag = "\"" + revision.ToString(CultureInfo.InvariantCulture) + "\"";

    private static async Task AuthorizeAsync(ValueTask<bool> decision, string action, string table)
    {
        if (!await decision.ConfigureAwait(false))
        {
            throw new KvForbiddenException($"You may not {action} table '{table}'.");
        }
    }
}

/// <summary>The access policy denied a request.</summary>
internal sealed class KvForbiddenException(string message) : KvStoreException(KvRealtimeErrorCodes.Forbidden, message);

/// <summary>Maps every KvStore error (and malformed requests) to a problem response; nothing bad-input-shaped becomes a 500.</summary>
internal sealed class KvHttpErrorFilter : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        try
        {
            return await next(context).ConfigureAwait(false);
        }
        catch (KvForbiddenException ex)
        {
            return KvProblems.Create(StatusCodes.Status403Forbidden, ex.Code, ex.Message);
        }
        catch (KvStoreException ex)
        {
            return KvProblems.From(ex);
        }
        catch (BadHttpRequestException ex)
        {
            return KvProblems.Create(ex.StatusCode, KvRealtimeErrorCodes.InvalidRequest, ex.Message);
        }
    }
}

/// <summary>Per-client write rate limit (by user name, else remote IP), a token bucket from System.Threading.RateLimiting.</summary>
internal sealed class KvWriteRateFilter(KvHttpRateLimiter limiter) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        using var lease = limiter.Limiter.AttemptAcquire(context.HttpContext);
        if (!lease.IsAcquired)
        {
            context.HttpContext.Response.Headers.RetryAfter = "1";
            return KvProblems.Create(StatusCodes.Status429TooManyRequests, KvRealtimeErrorCodes.RateLimited, "Too many writes from this client; retry in a moment.");
        }

        return await next(context).ConfigureAwait(false);
    }
}

/// <summary>Holds the partitioned write limiter of the HTTP API.</summary>
internal sealed class KvHttpRateLimiter : IDisposable
{
    public KvHttpRateLimiter(IOptions<KvRealtimeOptions> options)
    {
        var bucket = KvHubWriteLimiter.Bucket(options.Value);
        Limiter = PartitionedRateLimiter.Create<HttpContext, string>(http =>
            RateLimitPartition.GetTokenBucketLimiter(
                http.User.Identity?.IsAuthenticated == true ? "user:" + http.User.Identity.Name : "ip:" + http.Connection.RemoteIpAddress,
                _ => bucket));
    }

    public PartitionedRateLimiter<HttpContext> Limiter { get; }

    public void Dispose() => Limiter.Dispose();
}
