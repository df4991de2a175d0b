using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace KvStore.Realtime.Hubs;

/// <summary>
/// Sends <c>presence</c> (subscribers of a table on this node) to the table's subscribers on this node,
/// at most once a second per table. It runs wherever the hub runs, with or without the publisher, and
/// sends past the backplane: counts are per node, so another node's subscribers must not get them.
/// </summary>
internal sealed class KvPresenceNotifier(KvSubscriptions subscriptions, KvHubLifetimeManager hubs, IOptions<KvRealtimeOptions> options) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), options.Value.TimeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                foreach (var table in subscriptions.TakePresenceChanges())
                {
                    _ = hubs.SendLocalGroup(KvSubscriptions.GroupName(table), "presence", [new PresenceMessage(table, subscriptions.Count(table))], track: false);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
