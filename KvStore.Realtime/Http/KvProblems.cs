using Microsoft.AspNetCore.Http;

namespace KvStore.Realtime.Http;

/// <summary>RFC 7807 problem responses with a stable <c>code</c> extension (one of KvErrorCodes / KvRealtimeErrorCodes).</summary>
internal static class KvProblems
{
    public static IResult From(KvStoreException ex)
    {
        var extensions = new Dictionary<string, object?> { ["code"] = ex.Code };
        if (ex is KvConflictException conflict)
        {
            extensions["currentRevision"] = conflict.CurrentRevision;
        }

        if (ex is KvValidationException validation)
        {
            extensions["parameter"] = validation.ParameterName;
        }

        var status = ex.Code switch
        {
            KvErrorCodes.Conflict => StatusCodes.Status412PreconditionFailed,
            KvErrorCodes.NotFound => StatusCodes.Status404NotFound,
            KvErrorCodes.ValueTooLarge => StatusCodes.Status413PayloadTooLarge,
            KvErrorCodes.NotAnInteger or KvErrorCodes.Overflow => StatusCodes.Status409Conflict,
            KvErrorCodes.SchemaMismatch or KvErrorCodes.Unavailable or KvErrorCodes.OutcomeUnknown => StatusCodes.Status503ServiceUnavailable,
            _ => StatusCodes.Status400BadRequest,
        };
        return Create(status, ex.Code, ex.Message, extensions);
    }

    public static IResult Create(int status, string code, string detail, Dictionary<string, object?>? extensions = null)
    {
        extensions ??= [];
        extensions["code"] = code;
        return Results.Problem(
            detail: detail,
            statusCode: status,
            title: Title(code),
            type: "https://kvstore.dev/errors/" + code,
            extensions: extensions);
    }

    private static string Title(string code) => code switch
    {
        KvErrorCodes.Conflict => "Revision conflict",
        KvErrorCodes.NotFound => "Key not found",
        KvErrorCodes.ValueTooLarge => "Value too large",
        KvRealtimeErrorCodes.Forbidden => "Forbidden",
        KvRealtimeErrorCodes.RateLimited => "Too many writes",
        _ => "Invalid request",
    };
}
