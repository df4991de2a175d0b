namespace KvStore.Cdc.Protocol;

/// <summary>The end of the server's binlog at one instant, with the matching GTID state when known.</summary>
/// <param name="Position">File and offset of the next event to be written.</param>
/// <param name="MariaDbGtid">MariaDB <c>@@gtid_binlog_pos</c> at exactly that offset, or null when it could not be read consistently.</param>
/// <param name="MySqlGtid">MySQL <c>Executed_Gtid_Set</c> at that offset, or null when GTIDs are off.</param>
internal sealed record BinlogServerStatus(BinlogPosition Position, MariaDbGtidPosition? MariaDbGtid, MySqlGtidSet? MySqlGtid);
