using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace KvStore.Cdc.Protocol;

/// <summary>
/// Builds one client packet payload (without the 4-byte frame header) in a growable buffer.
/// Client packets are few and small (handshake, a handful of queries, the dump command), so this
/// favours simplicity; the hot path is the read side.
/// </summary>
internal sealed class PayloadBuilder
{
    private readonly ArrayBufferWriter<byte> _buffer;

    public PayloadBuilder(int initialCapacity = 128)
    {
        _buffer = new ArrayBufferWriter<byte>(initialCapacity);
    }

    public int Length => _buffer.WrittenCount;

    public ReadOnlySpan<byte> Written => _buffer.WrittenSpan;

    public byte[] ToArray() => _buffer.WrittenSpan.ToArray();

    public PayloadBuilder WriteByte(byte value)
    {
        _buffer.GetSpan(1)[0] = value;
        _buffer.Advance(1);
        return this;
    }

    public PayloadBuilder WriteUInt16(ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.GetSpan(2), value);
        _buffer.Advance(2);
        return this;
    }

    public PayloadBuilder WriteUInt32(uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.GetSpan(4), value);
        _buffer.Advance(4);
        return this;
    }

    public PayloadBuilder WriteUInt64(ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(_buffer.GetSpan(8), value);
        _buffer.Advance(8);
        return this;
    }

    public PayloadBuilder WriteBytes(ReadOnlySpan<byte> value)
    {
        _buffer.Write(value);
        return this;
    }

    public PayloadBuilder WriteZeros(int count)
    {
        var span = _buffer.GetSpan(count)[..count];
        span.Clear();
        _buffer.Advance(count);
        return this;
    }

    /// <summary>Writes <paramref name="value"/> as UTF-8 without a terminator (<c>string&lt;EOF&gt;</c> / fixed).</summary>
    public PayloadBuilder WriteString(string value)
    {
        var count = Encoding.UTF8.GetByteCount(value);
        var written = Encoding.UTF8.GetBytes(value, _buffer.GetSpan(count));
        _buffer.Advance(written);
        return this;
    }

    public PayloadBuilder WriteNullTerminatedString(string value) => WriteString(value).WriteByte(0);

    public PayloadBuilder WriteLengthEncodedInteger(ulong value)
    {
        switch (value)
        {
            case < 0xFB:
                return WriteByte((byte)value);
            case <= 0xFFFF:
                return WriteByte(0xFC).WriteUInt16((ushort)value);
            case <= 0xFF_FFFF:
                WriteByte(0xFD);
                var span = _buffer.GetSpan(3);
                span[0] = (byte)value;
                span[1] = (byte)(value >> 8);
                span[2] = (byte)(value >> 16);
                _buffer.Advance(3);
                return this;
            default:
                return WriteByte(0xFE).WriteUInt64(value);
        }
    }

    public PayloadBuilder WriteLengthEncodedBytes(ReadOnlySpan<byte> value) =>
        WriteLengthEncodedInteger((ulong)value.Length).WriteBytes(value);

    /// <summary>Writes a string prefixed by a one-byte length (COM_REGISTER_SLAVE fields).</summary>
    public PayloadBuilder WriteByteLengthString(string value)
    {
        var count = Encoding.UTF8.GetByteCount(value);
        if (count > byte.MaxValue)
        {
            throw new ArgumentException($"'{value}' is longer than 255 bytes.", nameof(value));
        }

        return WriteByte((byte)count).WriteString(value);
    }
}
