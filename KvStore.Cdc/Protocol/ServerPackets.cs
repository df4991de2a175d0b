using System.Text;

namespace KvStore.Cdc.Protocol;

/// <summary>Recognises and parses the generic OK / ERR / EOF response packets.</summary>
internal static class ServerPackets
{
    public const byte OkHeader = 0x00;
    public const byte EofHeader = 0xFE;
    public const byte ErrHeader = 0xFF;

    public static bool IsOk(ReadOnlySpan<byte> payload) => payload.Length >= 7 && payload[0] == OkHeader;

    public static bool IsErr(ReadOnlySpan<byte> payload) => payload.Length >= 3 && payload[0] == ErrHeader;

    /// <summary>EOF is 0xFE with fewer than 9 bytes; longer 0xFE packets are length-encoded data or an auth switch.</summary>
    public static bool IsEof(ReadOnlySpan<byte> payload) => payload.Length is > 0 and < 9 && payload[0] == EofHeader;

    /// <summary>Parses an ERR packet: <c>0xFF, code int&lt;2&gt;, ['#', sqlstate[5]], message</c>.</summary>
    public static (ushort Code, string SqlState, string Message) ParseError(ReadOnlySpan<byte> payload)
    {
        var reader = new PayloadReader(payload);
        if (reader.ReadByte() != ErrHeader)
        {
            throw new ReplicationProtocolException("Not an ERR packet.");
        }

        var code = reader.ReadUInt16();
        var sqlState = "HY000";
        if (reader.Remaining >= 6 && reader.PeekByte() == (byte)'#')
        {
            reader.Skip(1);
            sqlState = Encoding.ASCII.GetString(reader.ReadBytes(5));
        }

        return (code, sqlState, reader.ReadRestAsString());
    }

    /// <summary>Builds the exception for an ERR packet.</summary>
    public static ServerErrorException ToException(ReadOnlySpan<byte> payload, string? context = null)
    {
        var (code, state, message) = ParseError(payload);
        return new ServerErrorException(code, state, message, context);
    }

    /// <summary>Throws for ERR; throws a protocol error for anything but OK.</summary>
    public static void ExpectOk(ReadOnlySpan<byte> payload, string context)
    {
        if (IsErr(payload))
        {
            throw ToException(payload, context);
        }

        if (payload.Length == 0 || payload[0] != OkHeader)
        {
            throw new ReplicationProtocolException($"Expected an OK packet {context}, got a packet starting with 0x{(payload.Length == 0 ? 0 : payload[0]):X2} ({payload.Length} bytes).");
        }
    }
}
