using System.Buffers.Binary;
using System.Text;

namespace KvStore.Cdc.Protocol;

/// <summary>
/// Forward-only reader over one packet payload: little-endian integers, length-encoded integers and
/// strings. Allocation-free except for the methods that return <see cref="string"/>.
/// </summary>
internal ref struct PayloadReader
{
    private readonly ReadOnlySpan<byte> _buffer;
    private int _offset;

    public PayloadReader(ReadOnlySpan<byte> buffer)
    {
        _buffer = buffer;
        _offset = 0;
    }

    /// <summary>Bytes consumed so far.</summary>
    public readonly int Offset => _offset;

    /// <summary>Bytes left.</summary>
    public readonly int Remaining => _buffer.Length - _offset;

    /// <summary>The unread rest of the payload.</summary>
    public readonly ReadOnlySpan<byte> Rest => _buffer[_offset..];

    public byte ReadByte()
    {
        Need(1);
        return _buffer[_offset++];
    }

    public readonly byte PeekByte()
    {
        Need(1);
        return _buffer[_offset];
    }

    public ushort ReadUInt16()
    {
        Need(2);
        var value = BinaryPrimitives.ReadUInt16LittleEndian(_buffer[_offset..]);
        _offset += 2;
        return value;
    }

    public uint ReadUInt24()
    {
        Need(3);
        uint value = (uint)(_buffer[_offset] | (_buffer[_offset + 1] << 8) | (_buffer[_offset + 2] << 16));
        _offset += 3;
        return value;
    }

    public uint ReadUInt32()
    {
        Need(4);
        var value = BinaryPrimitives.ReadUInt32LittleEndian(_buffer[_offset..]);
        _offset += 4;
        return value;
    }

    public ulong ReadUInt64()
    {
        Need(8);
        var value = BinaryPrimitives.ReadUInt64LittleEndian(_buffer[_offset..]);
        _offset += 8;
        return value;
    }

    public ReadOnlySpan<byte> ReadBytes(int count)
    {
        if (count < 0)
        {
            throw new ReplicationProtocolException($"Negative length {count} in a server packet.");
        }

        Need(count);
        var value = _buffer.Slice(_offset, count);
        _offset += count;
        return value;
    }

    public void Skip(int count) => ReadBytes(count);

    /// <summary>Reads a length-encoded integer; <c>0xFB</c> (NULL in result-set rows) reads as <see langword="null"/>.</summary>
    public ulong? ReadLengthEncodedIntegerOrNull()
    {
        var first = ReadByte();
        switch (first)
        {
            case < 0xFB:
                return first;
            case 0xFB:
                return null;
            case 0xFC:
                return ReadUInt16();
            case 0xFD:
                return ReadUInt24();
            case 0xFE:
                return ReadUInt64();
            default:
                throw new ReplicationProtocolException("Invalid length-encoded integer prefix 0xFF.");
        }
    }

    public ulong ReadLengthEncodedInteger() =>
        ReadLengthEncodedIntegerOrNull() ?? throw new ReplicationProtocolException("Unexpected NULL (0xFB) where a length-encoded integer was expected.");

    /// <summary>Reads a length-encoded byte string; <see langword="false"/> for NULL.</summary>
    public bool TryReadLengthEncodedBytes(out ReadOnlySpan<byte> value)
    {
        var length = ReadLengthEncodedIntegerOrNull();
        if (length is null)
        {
            value = default;
            return false;
        }

        if (length.Value > int.MaxValue)
        {
            throw new ReplicationProtocolException($"Length-encoded string of {length.Value} bytes is too long.");
        }

        value = ReadBytes((int)length.Value);
        return true;
    }

    public string? ReadLengthEncodedStringOrNull() =>
        TryReadLengthEncodedBytes(out var bytes) ? Encoding.UTF8.GetString(bytes) : null;

    /// <summary>Reads bytes up to (not including) a NUL and skips the NUL.</summary>
    public ReadOnlySpan<byte> ReadNullTerminatedBytes()
    {
        var rest = Rest;
        var end = rest.IndexOf((byte)0);
        if (end < 0)
        {
            throw new ReplicationProtocolException("A NUL-terminated string in a server packet has no terminator.");
        }

        _offset += end + 1;
        return rest[..end];
    }

    public string ReadNullTerminatedString() => Encoding.UTF8.GetString(ReadNullTerminatedBytes());

    /// <summary>Reads everything left as a string (<c>string&lt;EOF&gt;</c>).</summary>
    public string ReadRestAsString()
    {
        var value = Encoding.UTF8.GetString(Rest);
        _offset = _buffer.Length;
        return value;
    }

    private readonly void Need(int count)
    {
        if (_buffer.Length - _offset < count)
        {
            throw new ReplicationProtocolException(
                $"Server packet too short: needed {count} more bytes at offset {_offset}, only {_buffer.Length - _offset} left.");
        }
    }
}
