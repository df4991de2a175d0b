using System.Security.Claims;

namespace KvStore.Realtime;

/// <summary>
/// Decides who may read (get, list, subscribe) and write (put, delete, increment, commit) a table.
/// Consulted on every subscribe and every write, over HTTP and over the hub.
/// </summary>
public interface IKvAccessPolicy
{
    /// <summary>True when <paramref name="user"/> may read <paramref name="table"/> and subscribe to it.</summary>
    ValueTask<bool> CanReadAsync(ClaimsPrincipal user, string table, CancellationToken cancellationToken);

    /// <summary>True when <paramref name="user"/> may change <paramref name="table"/>.</summary>
    ValueTask<bool> CanWriteAsync(ClaimsPrincipal user, string table, CancellationToken cancellationToken);
}

/// <summary>Ready-made access policies.</summary>
public static class KvAccessPolicies
{
    /// <summary>
    /// The default when none is registered: authenticated users may read and write every table;
    /// anonymous callers may do nothing. Register your own policy for per-table rules.
    /// </summary>
    public static IKvAccessPolicy AuthenticatedUsers { get; } = new Delegating(
        (user, _) => user.Identity?.IsAuthenticated == true,
        (user, _) => user.Identity?.IsAuthenticated == true);

    /// <summary>Everyone, including anonymous callers, may read and write every table. For demos and trusted networks only.</summary>
    public static IKvAccessPolicy AllowAnonymous { get; } = new Delegating((_, _) => true, (_, _) => true);

    /// <summary>Everyone may read; nobody may write through the hub or HTTP API.</summary>
    public static IKvAccessPolicy ReadOnly { get; } = new Delegating((_, _) => true, (_, _) => false);

    /// <summary>A policy from two functions of (user, table).</summary>
    public static IKvAccessPolicy Create(Func<ClaimsPrincipal, string, bool> canRead, Func<ClaimsPrincipal, string, bool> canWrite) =>
        new Delegating(canRead, canWrite);

    private sealed class Delegating(Func<ClaimsPrincipal, string, bool> canRead, Func<ClaimsPrincipal, string, bool> canWrite) : IKvAccessPolicy
    {
        public ValueTask<bool> CanReadAsync(ClaimsPrincipal user, string table, CancellationToken cancellationToken) => new(canRead(user, table));

        public ValueTask<bool> CanWriteAsync(ClaimsPrincipal user, string table, CancellationToken cancellationToken) => new(canWrite(user, table));
    }
}
