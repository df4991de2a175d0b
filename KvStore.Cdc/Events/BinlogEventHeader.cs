using System.Buffers.Binary;

namespace KvStore.Cdc.Events;

/// <summary>The 19-byte v4 header every binlog event starts with (all fields little-endian).</summary>
internal readonly record struct BinlogEventHeader(
    uint Timestamp,
    BinlogEventType Type,
    uint ServerId,
    uint EventLength,
    uint LogPosition,
    ushort Flags)
{
    /// <summary>Size of the v4 header in bytes.</summary>
    public const int Size = 19;

    /// <summary>LOG_EVENT_ARTIFICIAL_F: the event was made up by the server (fake ROTATE, artificial GTID_LIST); it never moves the position.</summary>
    public const ushort ArtificialFlag = 0x20;

    /// <summary>True for server-made events that must not move the replication position.</summary>
    public bool IsArtificial => (Flags & ArtificialFlag) != 0;

    /// <summary>Reads a header from the first 19 bytes of <paramref name="source"/>.</summary>
    public static BinlogEventHeader Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < Size)
        {
            throw new BinlogFormatException($"A binlog event header needs {Size} bytes, got {source.Length}.");
        }

        return new BinlogEventHeader(
            BinaryPrimitives.ReadUInt32LittleEndian(source),
            (BinlogEventType)source[4],
            BinaryPrimitives.ReadUInt32LittleEndian(source[5..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[9..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[13..]),
            BinaryPrimitives.ReadUInt16LittleEndian(source[17..]));
    }
}
