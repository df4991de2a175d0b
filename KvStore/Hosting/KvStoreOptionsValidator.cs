using Microsoft.Extensions.Options;

namespace KvStore;

/// <summary>Validates <see cref="KvStoreOptions"/> (used by the client constructor and by <c>ValidateOnStart</c>).</summary>
internal sealed class KvStoreOptionsValidator : IValidateOptions<KvStoreOptions>
{
    public ValidateOptionsResult Validate(string? name, KvStoreOptions options)
    {
        var failures = Check(options);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    public static List<string> Check(KvStoreOptions options)
    {
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            failures.Add("KvStoreOptions.ConnectionString is required.");
        }

        if (options.MaxValueBytes < 1 || options.MaxValueBytes > KvStoreOptions.HardMaxValueBytes)
        {
            failures.Add($"KvStoreOptions.MaxValueBytes must be 1..{KvStoreOptions.HardMaxValueBytes}; got {options.MaxValueBytes}.");
        }

        if (options.MaxTtl <= TimeSpan.Zero)
        {
            failures.Add("KvStoreOptions.MaxTtl must be positive.");
        }

        if (options.MaxBatchOperations is < 1 or > 10_000)
        {
            failures.Add("KvStoreOptions.MaxBatchOperations must be 1..10000.");
        }

        if (options.MaxPageSize is < 1 or > 100_000)
        {
            failures.Add("KvStoreOptions.MaxPageSize must be 1..100000.");
        }

        if (options.MaxRetryAttempts is < 0 or > 100)
        {
            failures.Add("KvStoreOptions.MaxRetryAttempts must be 0..100.");
        }

        if (options.RetryBaseDelay < TimeSpan.Zero)
        {
            failures.Add("KvStoreOptions.RetryBaseDelay cannot be negative.");
        }

        if (options.MaxQueuedPuts < 1)
        {
            failures.Add($"KvStoreOptions.MaxQueuedPuts must be at least 1; got {options.MaxQueuedPuts}.");
        }

        if (options.JsonSerializerOptions is null || options.TimeProvider is null)
        {
            failures.Add("KvStoreOptions.JsonSerializerOptions and TimeProvider are required.");
        }

        return failures;
    }
}
