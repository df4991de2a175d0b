using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace KvStore.Cdc.Events;

/// <summary>One event read from a binlog file: its bytes (header, body, checksum) and where it starts.</summary>
internal readonly record struct BinlogFileEvent(long Offset, ReadOnlyMemory<byte> Bytes);

/// <summary>
/// Reads a binlog file (the <c>FE 62 69 6E</c> magic, then v4 events back to back, each as long as its header
/// says) and yields each event's bytes for <see cref="BinlogEventParser"/>. Every event gets its own array,
/// so events parsed from them stay valid after the reader moves on.
/// </summary>
internal sealed class BinlogFileReader : IDisposable, IAsyncDisposable
{
    /// <summary>The 4 bytes every binlog file starts with.</summary>
    public static ReadOnlySpan<byte> Magic => [0xFE, 0x62, 0x69, 0x6E];

    // No real event comes close; a larger length means the file is corrupted, not that we should allocate it.
    private const uint MaxEventLength = 1u << 30;

    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly byte[] _header = new byte[BinlogEventHeader.Size];
    private long _offset;
    private bool _started;

    public BinlogFileReader(Stream stream, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _stream = stream;
        _leaveOpen = leaveOpen;
    }

    /// <summary>Opens <paramref name="path"/> for sequential reading.</summary>
    public static BinlogFileReader Open(string path) =>
        new(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 64 * 1024, FileOptions.SequentialScan | FileOptions.Asynchronous));

    /// <summary>File offset of the next event.</summary>
    public long Offset => _offset;

    /// <summary>Reads the next event, or null at the end of the file. A partial event at the end throws (the file was cut).</summary>
    public BinlogFileEvent? ReadNext()
    {
        if (!_started)
        {
            ReadMagic(ReadFully(_header.AsMemory(0, Magic.Length)));
        }

        var headerBytes = ReadFully(_header);
        if (headerBytes == 0)
        {
            return null;
        }

        var buffer = AllocateEvent(headerBytes);
        var bodyBytes = ReadFully(buffer.AsMemory(BinlogEventHeader.Size));
        return Complete(buffer, bodyBytes);
    }

    /// <summary>Asynchronous <see cref="ReadNext"/>.</summary>
    public async ValueTask<BinlogFileEvent?> ReadNextAsync(CancellationToken cancellationToken = default)
    {
        if (!_started)
        {
            ReadMagic(await ReadFullyAsync(_header.AsMemory(0, Magic.Length), cancellationToken).ConfigureAwait(false));
        }

        var headerBytes = await ReadFullyAsync(_header, cancellationToken).ConfigureAwait(false);
        if (headerBytes == 0)
        {
            return null;
        }

        var buffer = AllocateEvent(headerBytes);
        var bodyBytes = await ReadFullyAsync(buffer.AsMemory(BinlogEventHeader.Size), cancellationToken).ConfigureAwait(false);
        return Complete(buffer, bodyBytes);
    }

    /// <summary>All events of the file at <paramref name="path"/>.</summary>
    public static IEnumerable<BinlogFileEvent> ReadAll(string path)
    {
        using var reader = Open(path);
        while (reader.ReadNext() is { } next)
        {
            yield return next;
        }
    }

    /// <summary>All events of the file at <paramref name="path"/>, asynchronously.</summary>
    public static async IAsyncEnumerable<BinlogFileEvent> ReadAllAsync(string path, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var reader = Open(path);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadNextAsync(cancellationToken).ConfigureAwait(false) is { } next)
            {
                yield return next;
            }
        }
    }

    public void Dispose()
    {
        if (!_leaveOpen)
        {
            _stream.Dispose();
        }
    }

    public ValueTask DisposeAsync() => _leaveOpen ? ValueTask.CompletedTask : _stream.DisposeAsync();

    private void ReadMagic(int read)
    {
        if (read != Magic.Length || !_header.AsSpan(0, Magic.Length).SequenceEqual(Magic))
        {
            throw new BinlogFormatException("Not a binlog file: it does not start with the magic bytes FE 62 69 6E.");
        }

        _started = true;
        _offset = Magic.Length;
    }

    private byte[] AllocateEvent(int headerBytes)
    {
        if (headerBytes < BinlogEventHeader.Size)
        {
            throw new BinlogFormatException($"The binlog file ends inside the event header at offset {_offset}.");
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(_header.AsSpan(9));
        if (length < BinlogEventHeader.Size || length > MaxEventLength)
        {
            throw new BinlogFormatException($"Event at offset {_offset} has an invalid length {length}.");
        }

        var buffer = new byte[length];
        _header.CopyTo(buffer, 0);
        return buffer;
    }

    private BinlogFileEvent Complete(byte[] buffer, int bodyBytes)
    {
        if (bodyBytes != buffer.Length - BinlogEventHeader.Size)
        {
            throw new BinlogFormatException($"The binlog file ends inside the event at offset {_offset} ({buffer.Length} bytes long).");
        }

        var result = new BinlogFileEvent(_offset, buffer);
        _offset += buffer.Length;
        return result;
    }

    private int ReadFully(Memory<byte> destination)
    {
        var total = 0;
        while (total < destination.Length)
        {
            var read = _stream.Read(destination.Span[total..]);
            if (read == 0)
            {
                break;
            }

            total += read;
        }

        return total;
    }

    private async ValueTask<int> ReadFullyAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        var total = 0;
        while (total < destination.Length)
        {
            var read = await _stream.ReadAsync(destination[total..], cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            total += read;
        }

        return total;
    }
}
