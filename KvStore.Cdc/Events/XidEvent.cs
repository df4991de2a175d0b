namespace KvStore.Cdc.Events;

/// <summary>XID_EVENT (16): commit of a transactional (InnoDB) transaction; the checkpoint boundary.</summary>
internal sealed class XidEvent : BinlogEvent
{
    internal XidEvent(BinlogEventHeader header, ulong xid)
        : base(header)
    {
        Xid = xid;
    }

    /// <summary>The server's internal transaction id (not unique across servers or restarts).</summary>
    public ulong Xid { get; }
}
