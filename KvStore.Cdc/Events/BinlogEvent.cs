namespace KvStore.Cdc.Events;

/// <summary>A parsed binlog event. Subclasses expose the decoded body; <see cref="Header"/> carries the position.</summary>
internal abstract class BinlogEvent
{
    protected BinlogEvent(BinlogEventHeader header)
    {
        Header = header;
    }

    /// <summary>The 19-byte common header (type, server id, <c>log_pos</c> of the next event, flags).</summary>
    public BinlogEventHeader Header { get; }

    /// <summary>Shortcut for <c>Header.Type</c>.</summary>
    public BinlogEventType Type => Header.Type;

    /// <inheritdoc/>
    public override string ToString() => $"{Type} (log_pos {Header.LogPosition})";
}
