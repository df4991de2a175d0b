using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace KvStore.Cdc.Tests.Protocol;

/// <summary>Builds synthetic binlog events (v4 header + body + optional CRC32) for stream tests.</summary>
internal static class EventBytes
{
    public const ushort Artificial = 0x20;

    public static byte[] Event(byte type, uint logPos, byte[] body, bool crc, ushort flags = 0, uint timestamp = 1_700_000_000, uint serverId = 1)
    {
        var length = 19 + body.Length + (crc ? 4 : 0);
        var bytes = new byte[length];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, timestamp);
        bytes[4] = type;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(5), serverId);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(9), (uint)length);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(13), logPos);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(17), flags);
        body.CopyTo(bytes, 19);
        if (crc)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(length - 4), Crc32.HashToUInt32(bytes.AsSpan(0, length - 4)));
        }

        return bytes;
    }

    /// <summary>The packet payload for an event: 0x00 + event bytes.</summary>
    public static byte[] Packet(byte[] eventBytes) => [0x00, .. eventBytes];

    public static byte[] Rotate(string file, ulong position, uint logPos, bool crc, bool fake) =>
        Event(4, fake ? 0 : logPos, [.. BitConverter.GetBytes(position), .. Encoding.ASCII.GetBytes(file)], crc, fake ? Artificial : (ushort)0, fake ? 0 : 1_700_000_000u);

    /// <summary>A FORMAT_DESCRIPTION_EVENT of a checksum-aware server; the trailing 4 bytes are a CRC or zeros.</summary>
    public static byte[] FormatDescription(string serverVersion, uint logPos, bool crc32)
    {
        var body = new List<byte>();
        body.AddRange(BitConverter.GetBytes((ushort)4));
        var version = new byte[50];
        Encoding.ASCII.GetBytes(serverVersion).CopyTo(version, 0);
        body.AddRange(version);
        body.AddRange(BitConverter.GetBytes(0u));
        body.Add(19);
        var postHeaders = new byte[41];
        postHeaders[1] = 13; // QUERY
        postHeaders[3] = 8; // ROTATE
        postHeaders[18] = 8; // TABLE_MAP
        body.AddRange(postHeaders);
        body.Add(crc32 ? (byte)1 : (byte)0);

        // The FDE keeps its 4-byte checksum field even when the algorithm is NONE.
        return crc32 ? Event(15, logPos, [.. body], crc: true) : Event(15, logPos, [.. body, 0, 0, 0, 0], crc: false);
    }

    public static byte[] Query(uint logPos, string sql, bool crc, string database = "") =>
        Event(2, logPos, [.. new byte[8], (byte)database.Length, 0, 0, 0, 0, .. Encoding.ASCII.GetBytes(database), 0, .. Encoding.UTF8.GetBytes(sql)], crc);

    public static byte[] Xid(uint logPos, ulong xid, bool crc) => Event(16, logPos, BitConverter.GetBytes(xid), crc);

    public static byte[] MySqlGtid(uint logPos, Guid source, long number, bool crc)
    {
        var sid = new byte[16];
        source.TryWriteBytes(sid, bigEndian: true, out _);
        return Event(33, logPos, [0x01, .. sid, .. BitConverter.GetBytes(number), 2, .. new byte[16]], crc);
    }

    public static byte[] MariaDbGtid(uint logPos, uint domain, ulong sequence, byte flags, bool crc, uint serverId = 1) =>
        Event(162, logPos, [.. BitConverter.GetBytes(sequence), .. BitConverter.GetBytes(domain), flags, .. new byte[6]], crc, serverId: serverId);

    public static byte[] Heartbeat(string file, uint logPos, bool crc) =>
        Event(27, logPos, Encoding.ASCII.GetBytes(file), crc, timestamp: 0);
}
