using System.IO.Pipelines;

namespace KvStore.Cdc.Protocol;

/// <summary>Frames payloads as MySQL packets and writes them to a <see cref="PipeWriter"/>.</summary>
internal sealed class PacketWriter
{
    private PipeWriter _writer;

    public PacketWriter(PipeWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        _writer = writer;
    }

    /// <summary>Sequence id of the next packet written; set to 0 before each new command.</summary>
    public byte SequenceId { get; set; }

    /// <summary>Switches to a new pipe (after the TLS upgrade).</summary>
    public void ReplaceWriter(PipeWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        _writer = writer;
    }

    /// <summary>Writes the framing for <paramref name="payload"/> (splitting at 0xFFFFFF) without flushing.</summary>
    public void Write(ReadOnlySpan<byte> payload)
    {
        while (true)
        {
            var chunk = Math.Min(payload.Length, PacketReader.MaxChunkLength);
            var span = _writer.GetSpan(4 + chunk);
            span[0] = (byte)chunk;
            span[1] = (byte)(chunk >> 8);
            span[2] = (byte)(chunk >> 16);
            span[3] = SequenceId;
            payload[..chunk].CopyTo(span[4..]);
            _writer.Advance(4 + chunk);
            SequenceId = unchecked((byte)(SequenceId + 1));
            payload = payload[chunk..];

            // A payload that is an exact multiple of 0xFFFFFF ends with an empty packet.
            if (chunk < PacketReader.MaxChunkLength)
            {
                return;
            }
        }
    }

    /// <summary>Writes and flushes one payload.</summary>
    public async ValueTask SendAsync(ReadOnlyMemory<byte> payload, CancellationToken cancellationToken = default)
    {
        Write(payload.Span);
        await FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        FlushResult result;
        try
        {
            result = await _writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or System.Net.Sockets.SocketException or InvalidOperationException)
        {
            throw new ReplicationConnectionLostException($"Sending to the server failed: {ex.Message}", ex);
        }

        if (result.IsCompleted)
        {
            throw new ReplicationConnectionLostException("The connection is closed; nothing more can be sent.");
        }
    }
}
