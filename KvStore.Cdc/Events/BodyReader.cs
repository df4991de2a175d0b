using System.Buffers.Binary;
using System.Text;

namespace KvStore.Cdc.Events;

/// <summary>
/// Forward-only little-endian reader over an event body. Every read is bounds-checked and throws
/// <see cref="BinlogFormatException"/> instead of an <see cref="ArgumentOutOfRangeException"/>, so a
/// truncated or corrupted event always surfaces as a format error.
/// </summary>
internal ref struct BodyReader
{
    private readonly ReadOnlySpan<byte> _span;
    private int _position;

    public BodyReader(ReadOnlySpan<byte> span)
    {
        _span = span;
        _position = 0;
    }

    public readonly int Position => _position;

    public readonly int Remaining => _span.Length - _position;

    public readonly bool IsEmpty => _position >= _span.Length;

    public byte ReadByte()
    {
        Ensure(1);
        return _span[_position++];
    }

    public ushort ReadUInt16()
    {
        Ensure(2);
        var value = BinaryPrimitives.ReadUInt16LittleEndian(_span[_position..]);
        _position += 2;
        return value;
    }

    public uint ReadUInt24()
    {
        Ensure(3);
        var value = (uint)(_span[_position] | (_span[_position + 1] << 8) | (_span[_position + 2] << 16));
        _position += 3;
        return value;
    }

    public uint ReadUInt32()
    {
        Ensure(4);
        var value = BinaryPrimitives.ReadUInt32LittleEndian(_span[_position..]);
        _position += 4;
        return value;
    }

    public ulong ReadUInt48()
    {
        Ensure(6);
        var low = BinaryPrimitives.ReadUInt32LittleEndian(_span[_position..]);
        var high = BinaryPrimitives.ReadUInt16LittleEndian(_span[(_position + 4)..]);
        _position += 6;
        return low | ((ulong)high << 32);
    }

    public ulong ReadUInt64()
    {
        Ensure(8);
        var value = BinaryPrimitives.ReadUInt64LittleEndian(_span[_position..]);
        _position += 8;
        return value;
    }

    /// <summary>Reads an unsigned little-endian integer of 1 to 8 bytes.</summary>
    public ulong ReadUInt(int size)
    {
        Ensure(size);
        ulong value = 0;
        for (var i = size - 1; i >= 0; i--)
        {
            value = (value << 8) | _span[_position + i];
        }

        _position += size;
        return value;
    }

    /// <summary>Reads a MySQL "packed" (length-encoded) integer.</summary>
    public ulong ReadPackedInt()
    {
        var first = ReadByte();
        return first switch
        {
            < 251 => first,
            252 => ReadUInt16(),
            253 => ReadUInt24(),
            254 => ReadUInt64(),
            _ => throw new BinlogFormatException($"Invalid packed integer prefix 0x{first:X2} at offset {_position - 1}."),
        };
    }

    /// <summary>Reads a packed integer that must fit in a non-negative <see cref="int"/> (a count or a length).</summary>
    public int ReadPackedLength()
    {
        var value = ReadPackedInt();
        if (value > int.MaxValue)
        {
            throw new BinlogFormatException($"Packed length {value} at offset {_position} is out of range.");
        }

        return (int)value;
    }

    public ReadOnlySpan<byte> ReadBytes(int count)
    {
        Ensure(count);
        var result = _span.Slice(_position, count);
        _position += count;
        return result;
    }

    public ReadOnlySpan<byte> ReadToEnd()
    {
        var result = _span[_position..];
        _position = _span.Length;
        return result;
    }

    /// <summary>Reads a packed length followed by that many bytes.</summary>
    public ReadOnlySpan<byte> ReadPackedBytes() => ReadBytes(ReadPackedLength());

    public string ReadUtf8(int count) => Encoding.UTF8.GetString(ReadBytes(count));

    public void Skip(int count) => _ = ReadBytes(count);

    private readonly void Ensure(int count)
    {
        if (count < 0 || count > _span.Length - _position)
        {
            throw new BinlogFormatException(
                $"Event body truncated: needed {count} bytes at offset {_position}, {_span.Length - _position} left.");
        }
    }
}
