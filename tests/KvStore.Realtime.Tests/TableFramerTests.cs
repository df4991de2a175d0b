using System.Text;
using KvStore.Cdc;
using KvStore.Realtime.Publishing;
using KvStore.TestInfrastructure;
using Microsoft.Extensions.Time.Testing;

namespace KvStore.Realtime.Tests;

public sealed class TableFramerTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);
    private readonly FakeTimeProvider _time = new();
    private readonly List<(TableFrame Frame, TaskCompletionSource Delivered)> _sent = [];
    private readonly AckTracker _acks = new(null);

    private bool _deliverAtOnce;

    private TableFramer NewFramer() => new(Interval, _time, frame =>
    {
        var delivered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_sent)
        {
            _sent.Add((frame, delivered));
        }

        if (_deliverAtOnce)
        {
            delivered.SetResult();
        }

        return delivered.Task;
    });

    [Fact]
    public async Task A_tables_next_frame_waits_until_the_previous_one_is_delivered_and_merges_what_came_meanwhile()
    {
        var framer = NewFramer();
        framer.Add("t", [Put("a", 1)], Ack());
        Assert.Single(_sent);

        _time.Advance(Interval * 5);
        framer.Add("t", [Put("a", 2), Put("b", 2)], Ack());
        framer.Add("t", [Put("a", 3)], Ack());
        // Long past the interval, but frame 1 is still being delivered: nothing more goes out.
        Assert.Single(_sent);

        _sent[0].Delivered.SetResult();
        var second = await NextFrameAsync(1);
        Assert.Equal(1, second.After);
        Assert.Equal([("a", 3L), ("b", 2L)], second.Changes.Select(c => (c.Key, c.Revision)).OrderBy(c => c.Key));
        Assert.Equal(2, second.Acks.Count);
    }

    [Fact]
    public async Task A_delivered_frame_still_waits_for_the_interval_before_the_next()
    {
        _deliverAtOnce = true;
        var framer = NewFramer();
        framer.Add("t", [Put("a", 1)], Ack());
        framer.Add("t", [Put("a", 2)], Ack());
        _time.Advance(Interval / 2);
        Assert.Single(_sent);

        _time.Advance(Interval);
        var second = await NextFrameAsync(1);
        Assert.Equal([2L], second.Changes.Select(c => c.Revision));
    }

    [Fact]
    public void Tables_are_paced_independently()
    {
        var framer = NewFramer();
        framer.Add("a", [Put("k", 1, "a")], Ack());
        framer.Add("b", [Put("k", 1, "b")], Ack());
        Assert.Equal(["a", "b"], _sent.Select(s => s.Frame.Table));
    }

    private async Task<TableFrame> NextFrameAsync(int index)
    {
        await Eventually.UntilAsync(
            () =>
            {
                lock (_sent)
                {
                    return _sent.Count > index;
                }
            },
            () => $"frame {index + 1} was not sent");
        lock (_sent)
        {
            return _sent[index].Frame;
        }
    }

    private AckTracker.Entry Ack() => _acks.Track(new KvChangeBatch([], new KvStreamPosition("f", 4, null), DateTimeOffset.UnixEpoch), 1);

    private static KvChange Put(string key, long revision, string table = "t") =>
        new(table, key, KvChangeOperation.Put, Encoding.UTF8.GetBytes(revision.ToString(System.Globalization.CultureInfo.InvariantCulture)), revision, 1, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, null);
}
