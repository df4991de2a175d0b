using System.Text.Json;
using KvStore.Realtime.Hubs;
using Microsoft.AspNetCore.SignalR.Client;

namespace KvStore.Realtime.Tests;

/// <summary>
/// A hub client that follows docs/protocol.md: buffers changes until the Subscribe result arrives,
/// applies only revisions above what it holds, and resumes with the revision it holds — when asked to
/// (<c>resync</c>) and when it sees it missed something (a frame's <c>after</c> or a <c>progress</c>
/// revision above what it holds).
/// </summary>
public sealed class KvTestClient : IAsyncDisposable
{
    private readonly object _gate = new();
    private readonly List<ChangesMessage> _buffer = [];
    private readonly List<(long Revision, TaskCompletionSource Signal)> _waiters = [];
    private bool _subscribing;
    private int _resuming;

    private KvTestClient(HubConnection connection)
    {
        Connection = connection;
        connection.On<ChangesMessage>("changes", OnChanges);
        connection.On<PresenceMessage>("presence", p => LastPresence = p);
        connection.On<ProgressMessage>("progress", OnProgress);
        connection.On<ResyncMessage>("resync", m =>
        {
            if (m.Table == Table || m.Table == KvSubscriptions.AllTables)
            {
                ResumeInBackground("resync");
            }
        });
    }

    /// <summary>Why the client resumed on its own (resync, gap, progress), in order.</summary>
    public List<string> Resumes { get; } = [];

    /// <summary>A failed background resume, if any.</summary>
    public Exception? ResumeError { get; private set; }

    /// <summary>The latest background resume (null before the first).</summary>
    public Task<SubscribeResult?>? LastResume { get; private set; }

    public HubConnection Connection { get; }

    public string? Table { get; private set; }

    public long Revision { get; private set; }

    public Dictionary<string, KvEntryDto> Entries { get; } = new(StringComparer.Ordinal);

    public List<ChangesMessage> Frames { get; } = [];

    public List<ProgressMessage> Progress { get; } = [];

    public PresenceMessage? LastPresence { get; private set; }

    public SubscribeResult? LastResult { get; private set; }

    public static async Task<KvTestClient> ConnectAsync(string baseUrl)
    {
        var connection = new HubConnectionBuilder().WithUrl(baseUrl + "/hubs/kv").Build();
        var client = new KvTestClient(connection);
        await connection.StartAsync();
        return client;
    }

    public async Task<SubscribeResult> SubscribeAsync(string table, long? resumeFrom = null)
    {
        lock (_gate)
        {
            _subscribing = true;
            _buffer.Clear();
            if (Table != table)
            {
                Entries.Clear();
                Revision = 0;
            }

            Table = table;
        }

        var result = await Connection.InvokeAsync<SubscribeResult>("Subscribe", table, resumeFrom);
        lock (_gate)
        {
            LastResult = result;
            if (result.Mode == "snapshot")
            {
                Entries.Clear();
            }

            foreach (var entry in result.Entries)
            {
                ApplyEntry(entry);
            }

            Revision = result.Revision;
            _subscribing = false;
            var gap = false;
            foreach (var frame in _buffer)
            {
                gap |= !ApplyFrame(frame);
            }

            _buffer.Clear();
            Notify();
            if (gap)
            {
                ResumeInBackground("gap");
            }
        }

        return result;
    }

    /// <summary>Completes when the client holds <paramref name="revision"/> (or later).</summary>
    public Task WaitForRevisionAsync(long revision, TimeSpan? timeout = null)
    {
        lock (_gate)
        {
            if (Revision >= revision && !_subscribing)
            {
                return Task.CompletedTask;
            }

            var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((revision, signal));
            return signal.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(30));
        }
    }

    public Dictionary<string, string> LiveValues()
    {
        lock (_gate)
        {
            return Entries.Values.Where(e => e.Op == "put").ToDictionary(e => e.Key, e => e.Value!.Value.GetRawText(), StringComparer.Ordinal);
        }
    }

    public async ValueTask DisposeAsync() => await Connection.DisposeAsync();

    private void OnChanges(ChangesMessage message)
    {
        lock (_gate)
        {
            Frames.Add(message);
            if (message.Table != Table)
            {
                return;
            }

            if (_subscribing)
            {
                _buffer.Add(message);
                return;
            }

            var applied = ApplyFrame(message);
            Notify();
            if (!applied)
            {
                ResumeInBackground("gap");
            }
        }
    }

    private void OnProgress(ProgressMessage message)
    {
        lock (_gate)
        {
            Progress.Add(message);
            if (message.Table == Table && !_subscribing && message.Revision > Revision)
            {
                ResumeInBackground("progress");
            }
        }
    }

    /// <summary>Resubscribes with the revision held, at most one at a time (called under the gate).</summary>
    private void ResumeInBackground(string reason)
    {
        if (Table is not { } table || Interlocked.Exchange(ref _resuming, 1) != 0)
        {
            return;
        }

        Resumes.Add(reason);
        var from = Revision;
        LastResume = Task.Run(async () =>
        {
            try
            {
                return await SubscribeAsync(table, from);
            }
            catch (Exception ex)
            {
                ResumeError = ex;
                return null;
            }
            finally
            {
                Volatile.Write(ref _resuming, 0);
            }
        });
    }

    /// <summary>Applies a frame; false when it does not continue from the revision held (changes were missed).</summary>
    private bool ApplyFrame(ChangesMessage message)
    {
        if (message.After > Revision)
        {
            return false;
        }

        foreach (var change in message.Changes)
        {
            if (change.Revision > Revision || change.Unversioned == true)
            {
                ApplyEntry(change);
            }
        }

        Revision = Math.Max(Revision, message.Revision);
        return true;
    }

    private void ApplyEntry(KvEntryDto entry)
    {
        if (!Entries.TryGetValue(entry.Key, out var held) || held.Revision <= entry.Revision || entry.Unversioned == true)
        {
            Entries[entry.Key] = entry;
        }
    }

    private void Notify()
    {
        foreach (var waiter in _waiters.Where(w => Revision >= w.Revision).ToList())
        {
            waiter.Signal.TrySetResult();
            _waiters.Remove(waiter);
        }
    }
}

internal static class JsonValues
{
    public static JsonElement Of(string json) => JsonDocument.Parse(json).RootElement.Clone();
}
