using System.Net.WebSockets;
using System.Text;
using Microsoft.AspNetCore.SignalR.Client;

namespace KvStore.Realtime.Tests;

/// <summary>Hub connections that misbehave or are turned away, for the limit tests.</summary>
internal static class TestConnections
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>Connects one more client and returns the message it was closed (or refused) with.</summary>
    public static async Task<string> RefusedAsync(string baseUrl)
    {
        var connection = new HubConnectionBuilder().WithUrl(baseUrl + "/hubs/kv").Build();
        var closed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.Closed += ex =>
        {
            closed.TrySetResult(ex);
            return Task.CompletedTask;
        };

        try
        {
            await connection.StartAsync();
        }
        catch (Exception ex)
        {
            closed.TrySetResult(ex);
        }

        try
        {
            return (await closed.Task.WaitAsync(Timeout))?.Message ?? string.Empty;
        }
        finally
        {
            await connection.DisposeAsync();
        }
    }

    /// <summary>A raw WebSocket SignalR client that subscribes to <paramref name="table"/> and then never reads again.</summary>
    public static async Task<ClientWebSocket> StalledSubscriberAsync(int port, string table)
    {
        var socket = new ClientWebSocket();
        socket.Options.SetBuffer(1024, 1024);
        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/hubs/kv"), CancellationToken.None);
        await SendAsync(socket, """{"protocol":"json","version":1}""");
        await SendAsync(socket, $$"""{"type":1,"invocationId":"1","target":"Subscribe","arguments":["{{table}}",null]}""");
        // Read the handshake answer and the Subscribe completion, then stop reading for good.
        var buffer = new byte[64 * 1024];
        var text = new StringBuilder();
        while (!text.ToString().Contains("\"invocationId\":\"1\"", StringComparison.Ordinal))
        {
            using var timeout = new CancellationTokenSource(Timeout);
            var read = await socket.ReceiveAsync(buffer, timeout.Token);
            text.Append(Encoding.UTF8.GetString(buffer, 0, read.Count));
        }

        return socket;
    }

    private static Task SendAsync(ClientWebSocket socket, string json) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(json + "\u001e"), WebSocketMessageType.Text, true, CancellationToken.None);
}
