using KvStore.Cdc.Events;

namespace KvStore.Cdc.Protocol;

/// <summary>
/// One binlog event as received: its parsed header, the complete event bytes and where the stream stands
/// after it. <see cref="Data"/> points into a buffer the stream reuses: it is valid only until the next
/// <see cref="BinlogEventStream.MoveNextAsync"/> (or disposal). Copy what must outlive that.
/// </summary>
internal readonly struct BinlogRawEvent
{
    public BinlogRawEvent(BinlogEventHeader header, ReadOnlyMemory<byte> data, int checksumLength, BinlogPosition position)
    {
        Header = header;
        Data = data;
        ChecksumLength = checksumLength;
        Position = position;
    }

    public BinlogEventHeader Header { get; }

    /// <summary>The whole event: 19-byte header, body and the trailing checksum field if any.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>
    /// Trailing checksum bytes in <see cref="Data"/>: 4 or 0. The FDE of a checksum-aware server always
    /// has the 4-byte field (zeros when its algorithm is NONE), so its <c>checksum_alg</c> byte is the
    /// last byte of <see cref="DataWithoutChecksum"/>.
    /// </summary>
    public int ChecksumLength { get; }

    /// <summary><see cref="Data"/> without the checksum field.</summary>
    public ReadOnlyMemory<byte> DataWithoutChecksum => Data[..^ChecksumLength];

    /// <summary>The body: after the header, without the checksum field.</summary>
    public ReadOnlyMemory<byte> Body => Data[BinlogEventHeader.Size..^ChecksumLength];

    /// <summary>The stream position after this event (file and offset of the next event).</summary>
    public BinlogPosition Position { get; }

    /// <summary>HEARTBEAT (27) or MySQL HEARTBEAT_V2 (41): keep-alives that carry no change.</summary>
    public bool IsHeartbeat => Header.Type is BinlogEventType.Heartbeat or BinlogEventType.HeartbeatV2;
}
