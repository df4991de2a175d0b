namespace KvStore.Cdc.Events;

/// <summary>
/// ROTATE_EVENT (4): the stream continues in <see cref="NextFileName"/> at <see cref="Position"/>. The server also
/// sends a fake one (timestamp 0, log_pos 0, ARTIFICIAL flag) at the start of each file of a dump.
/// </summary>
internal sealed class RotateEvent : BinlogEvent
{
    internal RotateEvent(BinlogEventHeader header, ulong position, string nextFileName)
        : base(header)
    {
        Position = position;
        NextFileName = nextFileName;
    }

    /// <summary>Position in <see cref="NextFileName"/> where the stream continues (4 for a new file).</summary>
    public ulong Position { get; }

    /// <summary>The binlog file the stream continues with.</summary>
    public string NextFileName { get; }

    /// <summary>True for the server-made rotate that starts each file of a dump; it is not in the file itself.</summary>
    public bool IsFake => Header.IsArtificial || Header.LogPosition == 0;
}
