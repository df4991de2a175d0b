using System.Diagnostics;
using Xunit;

namespace KvStore.TestInfrastructure;

/// <summary>
/// Waits for a condition that only polling can observe (server state, a background service's status),
/// with a deadline that fails the test with a message. Where a signal exists, await it instead.
/// </summary>
public static class Eventually
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(10);

    /// <summary>Polls <paramref name="condition"/> until it holds; fails with <paramref name="what"/> after the timeout (default 30 s).</summary>
    public static Task UntilAsync(Func<bool> condition, Func<string> what, TimeSpan? timeout = null) =>
        UntilAsync(() => Task.FromResult(condition()), what, timeout);

    /// <summary>Polls <paramref name="condition"/> until it holds; fails with <paramref name="what"/> after the timeout (default 30 s).</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, Func<string> what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? DefaultTimeout;
        var elapsed = Stopwatch.StartNew();
        while (!await condition())
        {
            if (elapsed.Elapsed > limit)
            {
                Assert.Fail($"Not within {limit.TotalSeconds:0} s: {what()}");
            }

            await Task.Delay(PollInterval);
        }
    }
}
