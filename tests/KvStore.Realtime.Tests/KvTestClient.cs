using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;

namespace KvStore.Realtime.Tests;

/// <summary>
/// A hub client that follows docs/protocol.md: buffers changes until the Subscribe result arrives,
/// applies only revisions above what it holds, and resumes with the revision it holds.
/// </summary>
public sealed class KvTestClient : IAsyncDisposable
{
    private readonly object _gate = new();
    private readonly List<ChangesMessage> _buffer = [];
    private readonly List<(long Revision, TaskCompletionSource Signal)> _waiters = [];
    private bool _subscribing;

    private KvTestClient(HubConnection connection)
    {
        Connection = connection;
        connection.On<ChangesMessage>("changes", OnChanges);
        connection.On<PresenceMessage>("presence", p => LastPresence = p);
        connection.On<ProgressMessage>("progress", p => Progress.Add(p));
    }

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
            foreach (var frame in _buffer)
            {
                ApplyFrame(frame);
            }

            _buffer.Clear();
            Notify();
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

            ApplyFrame(message);
            Notify();
        }
    }

    private void ApplyFrame(ChangesMessage message)
    {
        foreach (var change in message.Changes)
        {
            if (change.Revision > Revision || change.Unversioned == true)
            {
                ApplyEntry(change);
            }
        }

        Revision = Math.Max(Revision, message.Revision);
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
