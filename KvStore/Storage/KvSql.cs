namespace KvStore.Storage;

/// <summary>
/// Every SQL statement KvStore runs. Text is constant; every value is a parameter.
/// Writes run in READ COMMITTED and always lock the table's <c>kv_tables</c> row before any entry
/// row, so KvStore's own transactions share one lock order and cannot deadlock each other.
/// </summary>
internal static class KvSql
{
    private const string Live = "state = 0 AND (expires_at IS NULL OR expires_at > UTC_TIMESTAMP(6))";

    public const string Get =
        $"SELECT {EntryRow.Columns} FROM kv_entries WHERE tbl = @t AND k = @k AND {Live}";

    public const string GetMany =
        $"SELECT {EntryRow.Columns} FROM kv_entries WHERE tbl = @t AND k IN (@keys) AND {Live}";

    public const string TableRevision =
        "SELECT rev, purged_rev FROM kv_tables WHERE name = @t";

    /// <summary>A consistent read: run inside <c>START TRANSACTION WITH CONSISTENT SNAPSHOT</c>.</summary>
    public const string ListPage =
        $"SELECT {EntryRow.Columns} FROM kv_entries WHERE tbl = @t AND k > @after AND k >= @prefix AND k < @prefixEnd AND {Live} ORDER BY k LIMIT @limit";

    public const string ListPageNoPrefixEnd =
        $"SELECT {EntryRow.Columns} FROM kv_entries WHERE tbl = @t AND k > @after AND k >= @prefix AND {Live} ORDER BY k LIMIT @limit";

    /// <summary>Everything (tombstones included) that changed after a revision; one range scan of ux_kv_entries_rev.</summary>
    public const string ChangesAfter =
        $"SELECT {EntryRow.Columns} FROM kv_entries WHERE tbl = @t AND rev > @after ORDER BY rev LIMIT @limit";

    /// <summary>
    /// Starts a consistent snapshot of table @t that includes every change already in the binlog.
    /// The server writes a transaction to the binlog before its commit becomes visible, so a change
    /// may already be on its way to subscribers while a plain snapshot still misses it. Every KvStore
    /// write holds the table's kv_tables row lock until its commit is visible, so a shared lock on
    /// that row (autocommit: released at once) waits out any such write before the read view is made.
    /// Its result set comes first; readers skip it.
    /// </summary>
    public const string BeginSnapshot =
        "SELECT rev FROM kv_tables WHERE name = @t LOCK IN SHARE MODE;" +
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";

    /// <summary>
    /// The unconditional put: one autocommit statement and its read-back, in one round trip. The entry
    /// goes in with rev NULL, and the schema's <c>kv_entries_put_revision</c> trigger (migration V002)
    /// bumps the table's kv_tables row and gives the entry the new revision within the statement; the
    /// triggers leave the outcome in the session variables the SELECT reads (a pooled connection is
    /// reset before its next use, and a failed INSERT stops the batch, so they are always this put's).
    /// A key that is absent, a tombstone or expired is (re-)created: its created_rev/created_at restart.
    /// </summary>
    public static readonly string FastPut =
        // READ COMMITTED keeps InnoDB from taking next-key (gap) locks that reach into the key range
        // of a neighbouring table, which could otherwise order two tables' transactions into a cycle.
        "SET TRANSACTION ISOLATION LEVEL READ COMMITTED;" +
        UpsertEntriesPrefix + PutRow(string.Empty, "NULL") + " " + UpsertEntryRule + ";" +
        "SELECT CAST(@kv_put_rev AS UNSIGNED), CAST(@kv_put_created_rev AS UNSIGNED), CAST(@kv_put_created_at AS DATETIME(6)), " +
        "CAST(@kv_put_updated_at AS DATETIME(6)), CAST(@kv_put_expires_at AS DATETIME(6))";

    /// <summary>
    /// The ON DUPLICATE KEY UPDATE of an unconditional put. A key that is absent, a tombstone or expired
    /// is (re-)created: its created_rev/created_at restart. The assignments run left to right, so the
    /// created_* columns are computed before state and expires_at change.
    /// </summary>
    private const string UpsertEntryRule =
        "ON DUPLICATE KEY UPDATE " +
        "created_rev = IF(state <> 0 OR expires_at <= UTC_TIMESTAMP(6), VALUES(rev), created_rev), " +
        "created_at = IF(state <> 0 OR expires_at <= UTC_TIMESTAMP(6), VALUES(created_at), created_at), " +
        "v = VALUES(v), rev = VALUES(rev), updated_at = VALUES(updated_at), expires_at = VALUES(expires_at), state = 0";

    /// <summary>
    /// First round trip of a coalesced group of unconditional puts (<see cref="PutGroup"/> is the
    /// second): lock the kv_tables rows of the group's tables in one ordered index scan and read their
    /// revisions, skipping any row another transaction holds, so a group never waits for a lock (and
    /// puts to other tables never queue behind a slow writer). Tables not returned are put one by one.
    /// </summary>
    public const string LockTablesSkipLocked =
        "SET TRANSACTION ISOLATION LEVEL READ COMMITTED;" +
        "START TRANSACTION;" +
        "SELECT name, rev FROM kv_tables WHERE name IN (@names) ORDER BY name FOR UPDATE SKIP LOCKED";

    /// <summary>One row of <see cref="PutGroup"/>'s entry upsert, its parameters numbered <paramref name="n"/>.</summary>
    public static string PutGroupRow(string n) => PutRow(n, "@r" + n);

    /// <summary>
    /// The VALUES row of an unconditional put, its parameters (@t, @k, @v, @ttl in microseconds or NULL)
    /// suffixed with <paramref name="n"/>; <paramref name="revision"/> goes into rev and created_rev.
    /// </summary>
    private static string PutRow(string n, string revision) =>
        $"(@t{n},@k{n},@v{n},{revision},{revision},UTC_TIMESTAMP(6),UTC_TIMESTAMP(6),IF(@ttl{n} IS NULL, NULL, UTC_TIMESTAMP(6) + INTERVAL @ttl{n} MICROSECOND),0)";

    /// <summary>
    /// Second round trip of a put group: <paramref name="tables"/> are kv_tables rows with the
    /// new table revisions, <paramref name="entries"/> <see cref="PutGroupRow"/>s of the puts
    /// (no key twice), <paramref name="readBack"/> an OR of <c>(tbl = @t AND k = @k)</c>. The entry upsert
    /// applies the rule of <see cref="FastPut"/> to every row.
    /// </summary>
    public static string PutGroup(string tables, string entries, string readBack) =>
        $"INSERT INTO kv_tables (name, rev, purged_rev, created_at) VALUES {tables} ON DUPLICATE KEY UPDATE rev = VALUES(rev);" +
        UpsertEntriesPrefix + entries + " " + UpsertEntryRule + ";" +
        $"SELECT tbl, rev, created_rev, created_at, updated_at, expires_at FROM kv_entries WHERE {readBack};" +
        "COMMIT";

    /// <summary>
    /// First round trip of a conditional write: begin, lock the table row (creating it at revision 0
    /// if new; a rollback removes it again), read the revision, the server clock and the current rows.
    /// </summary>
    public const string LockTableAndRead =
        "SET TRANSACTION ISOLATION LEVEL READ COMMITTED;" +
        "START TRANSACTION;" +
        "INSERT INTO kv_tables (name, rev, purged_rev, created_at) VALUES (@t, 0, 0, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE rev = rev;" +
        "SELECT rev, UTC_TIMESTAMP(6) FROM kv_tables WHERE name = @t;" +
        $"SELECT {EntryRow.Columns} FROM kv_entries WHERE tbl = @t AND k IN (@keys) FOR UPDATE";

    public const string UpdateTableRevision = "UPDATE kv_tables SET rev = @rev WHERE name = @t;";

    public const string UpsertEntriesPrefix =
        "INSERT INTO kv_entries (tbl, k, v, rev, created_rev, created_at, updated_at, expires_at, state) VALUES ";

    public const string UpsertEntriesSuffix =
        " ON DUPLICATE KEY UPDATE v = VALUES(v), rev = VALUES(rev), created_rev = VALUES(created_rev), " +
        "created_at = VALUES(created_at), updated_at = VALUES(updated_at), expires_at = VALUES(expires_at), state = VALUES(state);";

    public const string Commit = "COMMIT";

    public const string Rollback = "ROLLBACK";
}
