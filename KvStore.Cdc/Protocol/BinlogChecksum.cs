using System.Buffers.Binary;
using System.IO.Hashing;

namespace KvStore.Cdc.Protocol;

/// <summary>CRC32 (IEEE, zlib's polynomial) over an event minus its last 4 bytes, stored little-endian.</summary>
internal static class BinlogChecksum
{
    public const int Length = 4;

    /// <summary>True when the last 4 bytes of <paramref name="eventBytes"/> are the CRC32 of the rest.</summary>
    public static bool Matches(ReadOnlySpan<byte> eventBytes) =>
        eventBytes.Length > Length
        && Crc32.HashToUInt32(eventBytes[..^Length]) == BinaryPrimitives.ReadUInt32LittleEndian(eventBytes[^Length..]);

    /// <summary>
    /// Like <see cref="Matches"/>, but also accepts an FDE whose CRC was computed with
    /// LOG_EVENT_BINLOG_IN_USE_F (0x0001) clear: the server flips that flag in place without updating the
    /// CRC, and a dump of the active file may pass it on.
    /// </summary>
    public static bool MatchesFormatDescription(ReadOnlySpan<byte> eventBytes)
    {
        const int FlagsOffset = 17;
        if (Matches(eventBytes))
        {
            return true;
        }

        if (eventBytes.Length <= FlagsOffset + Length || (eventBytes[FlagsOffset] & 0x01) == 0)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[FlagsOffset + 1];
        eventBytes[..header.Length].CopyTo(header);
        header[FlagsOffset] &= 0xFE;
        var crc = new Crc32();
        crc.Append(header);
        crc.Append(eventBytes[header.Length..^Length]);
        return crc.GetCurrentHashAsUInt32() == BinaryPrimitives.ReadUInt32LittleEndian(eventBytes[^Length..]);
    }
}
