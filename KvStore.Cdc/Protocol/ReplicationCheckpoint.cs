namespace KvStore.Cdc.Protocol;

/// <summary>
/// The last point of the stream that is safe to resume from: after the last event handed out that was
/// not inside a transaction (so after a COMMIT/XID, a DDL, or a file-level event). Immutable snapshot.
/// </summary>
/// <param name="Position">
/// File and offset of the next event; <see langword="null"/> while unknown (a GTID start, until the first
/// transaction boundary or ROTATE, because the server skips over already-executed transactions).
/// </param>
/// <param name="MariaDbGtid">
/// MariaDB: last GTID per domain at this point, or <see langword="null"/> when not every domain is known
/// (a file/position start in the middle of a file, until the next file's GTID_LIST).
/// </param>
/// <param name="MySqlGtid">MySQL: the executed GTID set at this point, or <see langword="null"/> when unknown.</param>
internal sealed record ReplicationCheckpoint(BinlogPosition? Position, MariaDbGtidPosition? MariaDbGtid, MySqlGtidSet? MySqlGtid)
{
    /// <summary>
    /// The start position to resume from: the file/offset when known (exact on both flavours), otherwise
    /// the GTID state; <see langword="null"/> when neither is known yet.
    /// </summary>
    public BinlogStartPosition? ToStartPosition(bool preferGtid = false)
    {
        if (preferGtid || Position is null)
        {
            if (MariaDbGtid is not null)
            {
                return BinlogStartPosition.FromMariaDbGtid(MariaDbGtid);
            }

            if (MySqlGtid is not null)
            {
                return BinlogStartPosition.FromMySqlGtidSet(MySqlGtid);
            }
        }

        return Position is { } position ? BinlogStartPosition.FromPosition(position) : null;
    }
}
