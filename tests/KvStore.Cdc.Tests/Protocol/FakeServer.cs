using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace KvStore.Cdc.Tests.Protocol;

/// <summary>
/// A scripted MySQL-protocol server on a loopback port for one connection: the test drives it packet by
/// packet. Written from the protocol documentation, independently of the client code.
/// </summary>
internal sealed class FakeServer : IAsyncDisposable
{
    public const uint Protocol41 = 0x200;
    public const uint Ssl = 0x800;
    public const uint SecureConnection = 0x8000;
    public const uint PluginAuth = 0x80000;
    public const uint DefaultCapabilities = 0x1 | 0x4 | Protocol41 | 0x2000 | SecureConnection | PluginAuth;

    public static readonly byte[] Ok = [0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00];
    public static readonly byte[] Eof = [0xFE, 0x00, 0x00, 0x02, 0x00];

    private readonly TcpListener _listener;
    private TcpClient? _client;
    private Stream? _stream;
    private byte _next;

    public FakeServer()
    {
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public byte[] Nonce { get; } = Enumerable.Range(0, 20).Select(i => (byte)(0x21 + (i * 3))).ToArray();

    public async Task AcceptAsync()
    {
        _client = await _listener.AcceptTcpClientAsync();
        _client.NoDelay = true;
        _stream = _client.GetStream();
        _next = 0;
    }

    /// <summary>Sends HandshakeV10.</summary>
    public Task SendGreetingAsync(string version, string plugin, uint capabilities = DefaultCapabilities, uint connectionId = 42)
    {
        var payload = new List<byte> { 10 };
        payload.AddRange(Encoding.ASCII.GetBytes(version));
        payload.Add(0);
        payload.AddRange(BitConverter.GetBytes(connectionId));
        payload.AddRange(Nonce[..8]);
        payload.Add(0);
        payload.AddRange(BitConverter.GetBytes((ushort)capabilities));
        payload.Add(45);
        payload.AddRange(BitConverter.GetBytes((ushort)2));
        payload.AddRange(BitConverter.GetBytes((ushort)(capabilities >> 16)));
        payload.Add(21);
        payload.AddRange(new byte[10]);
        payload.AddRange(Nonce[8..]);
        payload.Add(0);
        payload.AddRange(Encoding.ASCII.GetBytes(plugin));
        payload.Add(0);
        return SendAsync([.. payload]);
    }

    public async Task<byte[]> ReadAsync()
    {
        var header = new byte[4];
        await _stream!.ReadExactlyAsync(header);
        var length = header[0] | (header[1] << 8) | (header[2] << 16);
        if (header[3] != _next)
        {
            throw new InvalidOperationException($"Fake server expected sequence id {_next}, got {header[3]}.");
        }

        var payload = new byte[length];
        await _stream.ReadExactlyAsync(payload);
        _next = (byte)(header[3] + 1);
        return payload;
    }

    /// <summary>Reads the next command (sequence id 0).</summary>
    public Task<byte[]> ReadCommandAsync()
    {
        _next = 0;
        return ReadAsync();
    }

    public async Task SendAsync(byte[] payload)
    {
        await _stream!.WriteAsync(PacketBytes.Frame(payload, _next));
        _next++;
        await _stream.FlushAsync();
    }

    public async Task SendManyAsync(IEnumerable<byte[]> payloads)
    {
        foreach (var payload in payloads)
        {
            await SendAsync(payload);
        }
    }

    public static byte[] Error(ushort code, string sqlState, string message) =>
        [0xFF, (byte)code, (byte)(code >> 8), (byte)'#', .. Encoding.ASCII.GetBytes(sqlState), .. Encoding.UTF8.GetBytes(message)];

    /// <summary>A one-column text result set: column count, definition, EOF, rows, EOF.</summary>
    public async Task SendResultSetAsync(string column, params string?[] values)
    {
        await SendAsync([1]);
        var definition = new List<byte>();
        foreach (var text in new[] { "def", "", "", "", column, column })
        {
            definition.Add((byte)text.Length);
            definition.AddRange(Encoding.ASCII.GetBytes(text));
        }

        definition.AddRange([0x0C, 33, 0, 0, 1, 0, 0, 0xFD, 0, 0, 0, 0, 0]);
        await SendAsync([.. definition]);
        await SendAsync(Eof);
        foreach (var value in values)
        {
            await SendAsync(value is null ? [0xFB] : [(byte)value.Length, .. Encoding.UTF8.GetBytes(value)]);
        }

        await SendAsync(Eof);
    }

    public async Task UpgradeToTlsAsync(X509Certificate2 certificate)
    {
        var ssl = new SslStream(_stream!, leaveInnerStreamOpen: false);
        try
        {
            await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate });
        }
        catch
        {
            await ssl.DisposeAsync();
            throw;
        }

        _stream = ssl;
    }

    /// <summary>Parses HandshakeResponse41 (or SSLRequest) as the documentation describes it.</summary>
    public static (uint Capabilities, string User, byte[] AuthResponse, string Plugin) ParseResponse(byte[] payload)
    {
        var capabilities = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        var offset = 32;
        var end = Array.IndexOf(payload, (byte)0, offset);
        var user = Encoding.UTF8.GetString(payload, offset, end - offset);
        offset = end + 1;
        int authLength = payload[offset++];
        var auth = payload[offset..(offset + authLength)];
        offset += authLength;
        var pluginEnd = Array.IndexOf(payload, (byte)0, offset);
        var plugin = Encoding.ASCII.GetString(payload, offset, pluginEnd - offset);
        return (capabilities, user, auth, plugin);
    }

    public async Task CloseAsync()
    {
        if (_stream is not null)
        {
            await _stream.DisposeAsync();
        }

        _client?.Dispose();
        _stream = null;
    }

    public async ValueTask DisposeAsync()
    {
        await CloseAsync();
        _listener.Stop();
        _listener.Dispose();
    }
}
