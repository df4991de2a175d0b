-- KvStore schema, version 2: an unconditional put is one autocommit statement.
-- A trigger takes the table revision for an entry inserted with rev NULL, so the put needs no
-- explicit transaction (one round trip, one statement). Every other write still takes its
-- revisions itself and inserts them explicitly; for those the triggers only note the row.
-- Safe to re-run (CREATE TRIGGER IF NOT EXISTS: MariaDB 10.1.4+, MySQL 8.0.29+).
-- While the binary log is on, creating a trigger needs SUPER (MariaDB, MySQL 5.7) or
-- SET_USER_ID/SYSTEM_USER (MySQL 8), or log_bin_trust_function_creators=1 on the server.
-- The triggers run as their DEFINER (the account that applies this file): keep that account,
-- with INSERT and UPDATE on kv_tables. The DELIMITER lines are for the mariadb/mysql clients;
-- the migrator reads them too.

DELIMITER ;;

-- A put inserts its entry with rev and created_rev NULL. This trigger creates or bumps the table's
-- kv_tables row (which stays locked until the commit, like in every KvStore write, so revisions
-- commit in order) and gives the entry the new revision. Without the trigger such an insert fails
-- (rev is NOT NULL), so no entry is ever written without a revision. The session variables
-- @kv_put_* hand the outcome to the put's read-back in the same round trip.
CREATE TRIGGER IF NOT EXISTS kv_entries_put_revision BEFORE INSERT ON kv_entries FOR EACH ROW
BEGIN
  IF NEW.rev IS NULL THEN
    INSERT INTO kv_tables (name, rev, purged_rev, created_at) VALUES (NEW.tbl, LAST_INSERT_ID(1), 0, UTC_TIMESTAMP(6))
      ON DUPLICATE KEY UPDATE rev = LAST_INSERT_ID(rev + 1);
    SET NEW.rev = LAST_INSERT_ID(), NEW.created_rev = LAST_INSERT_ID();
    SET @kv_put_rev = NEW.rev, @kv_put_created_rev = NEW.rev, @kv_put_created_at = NEW.created_at,
        @kv_put_updated_at = NEW.updated_at, @kv_put_expires_at = NEW.expires_at;
  END IF;
END;;

-- When the put's key already exists (ON DUPLICATE KEY UPDATE), it keeps or restarts created_rev
-- and created_at; this notes which, for the read-back.
CREATE TRIGGER IF NOT EXISTS kv_entries_put_created BEFORE UPDATE ON kv_entries FOR EACH ROW
  SET @kv_put_created_rev = NEW.created_rev, @kv_put_created_at = NEW.created_at;;

DELIMITER ;

INSERT INTO kv_schema_version (version, description, applied_at)
VALUES (2, 'put revision trigger', UTC_TIMESTAMP(6))
ON DUPLICATE KEY UPDATE version = version;
