using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;

namespace KvStore.Cdc.Protocol;

/// <summary>
/// Reads MySQL protocol packets (<c>length int&lt;3&gt;, sequence_id int&lt;1&gt;, payload</c>) from a
/// <see cref="PipeReader"/>, joins 0xFFFFFF continuation packets into one payload and checks sequence ids.
/// </summary>
/// <remarks>
/// <para><b>Lifetime:</b> each payload is copied exactly once, from the pipe into a buffer rented from
/// <see cref="ArrayPool{T}.Shared"/> that this reader reuses. The returned memory is valid only until the
/// next call to <see cref="ReadPayloadAsync"/> (or <see cref="Dispose"/>); copy what must outlive it.</para>
/// <para><b>Back-pressure:</b> the reader only pulls bytes when asked for the next payload, so a slow
/// consumer leaves data in the socket buffers and TCP flow control slows the server down.</para>
/// <para>Not thread-safe: one reader per connection, one read at a time.</para>
/// </remarks>
internal sealed class PacketReader : IDisposable
{
    /// <summary>Payload size that means "more of this payload follows in the next packet".</summary>
    public const int MaxChunkLength = 0xFF_FFFF;

    /// <summary>Default limit on one joined payload: 1 GiB, the largest <c>max_allowed_packet</c>.</summary>
    public const int DefaultMaxPayloadLength = 1 << 30;

    private const int InitialBufferSize = 16 * 1024;

    // Buffers grown above this for one huge event go back to the pool on the next read.
    private const int RetainedBufferSize = 1024 * 1024;

    private readonly TimeProvider _timeProvider;
    private readonly int _maxPayloadLength;
    private PipeReader _reader;
    private byte[] _buffer;
    private CancellationTokenSource? _timeoutSource;
    private bool _disposed;

    public PacketReader(PipeReader reader, TimeProvider? timeProvider = null, int maxPayloadLength = DefaultMaxPayloadLength)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPayloadLength, 1);
        _reader = reader;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _maxPayloadLength = maxPayloadLength;
        _buffer = ArrayPool<byte>.Shared.Rent(InitialBufferSize);
    }

    /// <summary>The sequence id the next packet must carry (wraps at 256).</summary>
    public byte SequenceId { get; set; }

    /// <summary>
    /// Longest silence tolerated while waiting for bytes; <see cref="Timeout.InfiniteTimeSpan"/> (the
    /// default) waits forever. Measured per wait for new bytes, so a slow consumer never trips it.
    /// </summary>
    public TimeSpan ReadTimeout { get; set; } = Timeout.InfiniteTimeSpan;

    /// <summary>What the reader is waiting for, used in timeout messages.</summary>
    public string Activity { get; set; } = "waiting for a server packet";

    /// <summary>Switches to a new pipe (after the TLS upgrade). Nothing may be buffered in the old one.</summary>
    public void ReplaceReader(PipeReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        _reader = reader;
    }

    /// <summary>
    /// Reads the next logical payload. The memory is valid until the next call (see remarks on the type).
    /// </summary>
    /// <exception cref="ReplicationConnectionLostException">The input ended or the transport failed.</exception>
    /// <exception cref="ReplicationTimeoutException">No bytes arrived within <see cref="ReadTimeout"/>.</exception>
    /// <exception cref="ReplicationProtocolException">Bad sequence id or an oversized payload.</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ReadOnlyMemory<byte>> ReadPayloadAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_buffer.Length > RetainedBufferSize)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = ArrayPool<byte>.Shared.Rent(InitialBufferSize);
        }

        var length = 0;
        while (true)
        {
            var result = await ReadAtLeastAsync(4, atPacketStart: length == 0, cancellationToken).ConfigureAwait(false);
            var chunkLength = ReadHeader(result.Buffer, out var sequenceId);
            _reader.AdvanceTo(result.Buffer.GetPosition(4));

            if (sequenceId != SequenceId)
            {
                throw new ReplicationProtocolException(
                    $"Packet out of order: expected sequence id {SequenceId}, got {sequenceId}.");
            }

            SequenceId = unchecked((byte)(SequenceId + 1));
            if ((long)length + chunkLength > _maxPayloadLength)
            {
                throw new ReplicationProtocolException(
                    $"The server sent a packet of more than {_maxPayloadLength} bytes; raise the maximum packet size option if this is expected.");
            }

            EnsureCapacity(length + chunkLength);

            // Copy the chunk as it arrives instead of waiting for all of it, so a 16 MiB chunk is not
            // buffered twice (pipe + our buffer).
            var remaining = chunkLength;
            while (remaining > 0)
            {
                result = await ReadAtLeastAsync(1, atPacketStart: false, cancellationToken).ConfigureAwait(false);
                var available = result.Buffer;
                var take = (int)Math.Min(remaining, available.Length);
                available.Slice(0, take).CopyTo(_buffer.AsSpan(length));
                length += take;
                remaining -= take;
                _reader.AdvanceTo(available.GetPosition(take));
            }

            if (chunkLength < MaxChunkLength)
            {
                return new ReadOnlyMemory<byte>(_buffer, 0, length);
            }
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _timeoutSource?.Dispose();
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }

    private static int ReadHeader(ReadOnlySequence<byte> buffer, out byte sequenceId)
    {
        Span<byte> header = stackalloc byte[4];
        buffer.Slice(0, 4).CopyTo(header);
        sequenceId = header[3];
        return header[0] | (header[1] << 8) | (header[2] << 16);
    }

    private void EnsureCapacity(int needed)
    {
        if (needed <= _buffer.Length)
        {
            return;
        }

        var size = Math.Max(needed, (int)Math.Min((long)_buffer.Length * 2, Array.MaxLength));
        var bigger = ArrayPool<byte>.Shared.Rent(size);
        _buffer.AsSpan().CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ReadResult> ReadAtLeastAsync(int minimum, bool atPacketStart, CancellationToken cancellationToken)
    {
        ReadResult result;
        if (_reader.TryRead(out result))
        {
            if (result.Buffer.Length >= minimum)
            {
                return result;
            }

            ThrowIfEnded(result, atPacketStart);
            _reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }

        while (true)
        {
            result = await ReadWithTimeoutAsync(cancellationToken).ConfigureAwait(false);
            if (result.Buffer.Length >= minimum)
            {
                return result;
            }

            ThrowIfEnded(result, atPacketStart);
            _reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    private void ThrowIfEnded(ReadResult result, bool atPacketStart)
    {
        if (result.IsCompleted)
        {
            var message = atPacketStart && result.Buffer.IsEmpty
                ? "The server closed the connection."
                : "The connection closed in the middle of a packet.";
            _reader.AdvanceTo(result.Buffer.End);
            throw new ReplicationConnectionLostException(message);
        }

        if (result.IsCanceled)
        {
            throw new ReplicationConnectionLostException("The read was cancelled because the connection is closing.");
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ReadResult> ReadWithTimeoutAsync(CancellationToken cancellationToken)
    {
        if (ReadTimeout == Timeout.InfiniteTimeSpan)
        {
            try
            {
                return await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsTransportFailure(ex, cancellationToken))
            {
                throw new ReplicationConnectionLostException($"The connection failed while {Activity}: {ex.Message}", ex);
            }
        }

        var timeout = _timeoutSource ??= new CancellationTokenSource(Timeout.InfiniteTimeSpan, _timeProvider);
        timeout.CancelAfter(ReadTimeout);
        var registration = cancellationToken.CanBeCanceled
            ? cancellationToken.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), timeout)
            : default;
        try
        {
            return await _reader.ReadAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex)
        {
            // Report the caller's own cancellation with the caller's token, not our linked timeout token.
            cancellationToken.ThrowIfCancellationRequested();
            throw new ReplicationTimeoutException(ReadTimeout, Activity, ex);
        }
        catch (Exception ex) when (IsTransportFailure(ex, cancellationToken))
        {
            // Some transports report an aborted read as an IOException rather than a cancellation.
            if (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new ReplicationTimeoutException(ReadTimeout, Activity, ex);
            }

            throw new ReplicationConnectionLostException($"The connection failed while {Activity}: {ex.Message}", ex);
        }
        finally
        {
            await registration.DisposeAsync().ConfigureAwait(false);
            if (timeout.IsCancellationRequested)
            {
                // A cancelled source cannot be re-armed; the next wait gets a fresh one.
                timeout.Dispose();
                _timeoutSource = null;
            }
            else
            {
                timeout.CancelAfter(Timeout.InfiniteTimeSpan);
            }
        }
    }

    private static bool IsTransportFailure(Exception ex, CancellationToken cancellationToken) =>
        ex is IOException or ObjectDisposedException or System.Net.Sockets.SocketException or InvalidOperationException
        || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested);
}
