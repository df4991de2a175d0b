namespace KvStore.Cdc.Protocol;

/// <summary>Flags of COM_BINLOG_DUMP / COM_BINLOG_DUMP_GTID. Bit 2 means different things per flavour.</summary>
[Flags]
internal enum BinlogDumpFlags : ushort
{
    None = 0,

    /// <summary>BINLOG_DUMP_NON_BLOCK: send EOF at the end of the binlog instead of waiting for more.</summary>
    NonBlocking = 0x01,

    /// <summary>MariaDB BINLOG_SEND_ANNOTATE_ROWS_EVENT: include ANNOTATE_ROWS (160).</summary>
    MariaDbSendAnnotateRows = 0x02,

    /// <summary>MySQL 8.0.26+ USE_HEARTBEAT_EVENT_V2: heartbeats as event 41 with a 64-bit position.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1069:Enums values should not be duplicated", Justification = "The protocol gives bit 2 a different meaning per server flavour.")]
    MySqlHeartbeatV2 = 0x02,

    /// <summary>MySQL BINLOG_THROUGH_GTID (COM_BINLOG_DUMP_GTID).</summary>
    ThroughGtid = 0x04,
}
