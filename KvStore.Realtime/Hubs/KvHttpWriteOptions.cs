using System.Text.Json;

namespace KvStore.Realtime.Hubs;

/// <summary>Turns wire-level write options and batch operations into KvStore calls, rejecting bad input with typed errors.</summary>
internal static class KvHttpWriteOptions
{
    private static readonly long MaxTtlMs = (long)TimeSpan.FromDays(3650).TotalMilliseconds;

    public static KvPutOptions? Validate(KvWriteOptionsDto? options)
    {
        if (options is null)
        {
            return null;
        }

        if (options.TtlMs is { } ttl && (ttl < 1 || ttl > MaxTtlMs))
        {
            throw new KvValidationException(KvErrorCodes.InvalidTtl, "ttlMs", $"ttlMs {ttl} is out of range 1..{MaxTtlMs}.");
        }

        return options.ToPutOptions();
    }

    public static KvBatch ToBatch(string table, IReadOnlyList<KvBatchOperationDto>? operations)
    {
        if (operations is null || operations.Count == 0)
        {
            throw new KvValidationException(KvErrorCodes.InvalidArgument, "operations", "A commit needs at least one operation.");
        }

        var batch = new KvBatch(table);
        for (var i = 0; i < operations.Count; i++)
        {
            var op = operations[i] ?? throw new KvValidationException(KvErrorCodes.InvalidArgument, $"operations[{i}]", "An operation is null.");
            switch (op.Op)
            {
                case "put":
                    if (op.Value is not { ValueKind: not JsonValueKind.Undefined } value)
                    {
                        throw new KvValidationException(KvErrorCodes.InvalidJson, $"operations[{i}].value", "A put needs a value.");
                    }

                    batch.Put(op.Key, value, Validate(new KvWriteOptionsDto(op.TtlMs, op.IfRevision, op.IfAbsent)));
                    break;
                case "delete":
                    batch.Delete(op.Key, op.IfRevision);
                    break;
                default:
                    throw new KvValidationException(KvErrorCodes.InvalidArgument, $"operations[{i}].op", $"Unknown operation '{op.Op}'; use 'put' or 'delete'.");
            }
        }

        return batch;
    }
}
