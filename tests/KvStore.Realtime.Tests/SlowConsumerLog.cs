using Microsoft.Extensions.Logging;

namespace KvStore.Realtime.Tests;

/// <summary>
/// The slow-consumer closes one host logs (event 3000), by connection id: unlike the process-wide meter,
/// it is not shared with the other tests running at the same time.
/// </summary>
internal sealed class SlowConsumerLog : ILoggerProvider, ILogger
{
    private readonly TaskCompletionSource<string> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<string> _connections = [];

    /// <summary>Completes with the connection id of the first close.</summary>
    public Task<string> Closed => _closed.Task;

    /// <summary>Every close logged so far (connection ids, one entry per log line).</summary>
    public IReadOnlyList<string> Connections
    {
        get
        {
            lock (_connections)
            {
                return _connections.ToList();
            }
        }
    }

    public ILogger CreateLogger(string categoryName) => this;

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (eventId.Id == 3000 && state is IReadOnlyList<KeyValuePair<string, object?>> fields)
        {
            var id = fields.First(f => f.Key == "ConnectionId").Value?.ToString() ?? string.Empty;
            lock (_connections)
            {
                _connections.Add(id);
            }

            _closed.TrySetResult(id);
        }
    }

    public void Dispose()
    {
    }
}
