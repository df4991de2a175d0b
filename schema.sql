-- =====================================================================================
-- KvStore: the complete current schema (version 2), for DBAs.
--
-- Safe to re-run: every statement is idempotent (CREATE ... IF NOT EXISTS, upserts).
-- It is the concatenation of the versioned migrations in KvStore/Schema/Migrations,
-- which the library applies with KvSchema.MigrateAsync (or `kvstore migrate`, see
-- docs/operations.md) and records in kv_schema_version. A test keeps the two in sync.
--
--   mariadb  -h HOST -u USER -p DATABASE < schema.sql
--   mysql    -h HOST -u USER -p DATABASE < schema.sql
--
-- Required server settings (KvStore.Cdc reads the binlog; KvSchema.CheckServerAsync
-- reports what is missing):
--   log_bin = <basename>            binary log on
--   binlog_format = ROW
--   binlog_row_image = FULL         full before/after images
--   binlog_row_metadata = FULL      column names in TABLE_MAP (MariaDB 10.5+, MySQL 8.0.1+)
--   server_id = <unique, non-zero>
--   max_allowed_packet >= 64M       room for 16 MiB values (default limit is 1 MiB)
--   log_bin_compress = OFF (MariaDB), binlog_transaction_compression = OFF (MySQL),
--   binlog_row_value_options = '' (MySQL)
--   gtid_strict_mode = ON (MariaDB, recommended), binlog_expire_logs_seconds >= the
--   longest CDC reader downtime you want to survive without a resync.
-- Privileges: the application user needs SELECT, INSERT, UPDATE, DELETE on this
-- database; the account that applies this file also needs CREATE, INDEX and TRIGGER, and,
-- because the binary log is on, SUPER (MySQL 8: SET_USER_ID) unless the server runs with
-- log_bin_trust_function_creators=1 (see V002 below); the triggers run as that account.
-- The CDC user needs REPLICATION SLAVE and BINLOG MONITOR (MariaDB) / REPLICATION CLIENT
-- (MySQL), plus SELECT, INSERT, UPDATE on kv_cdc_checkpoints.
-- =====================================================================================

-- >>> migration V001
-- KvStore schema, version 1.
-- Safe to re-run: every statement is idempotent. Apply with the migrator
-- (KvSchema.MigrateAsync / `kvstore migrate`) or by hand: mariadb <db> < V001__initial.sql

CREATE TABLE IF NOT EXISTS kv_schema_version (
  version     INT          NOT NULL,
  description VARCHAR(200) NOT NULL,
  applied_at  DATETIME(6)  NOT NULL,
  PRIMARY KEY (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per KV table (namespace). `rev` is the table's revision counter: every change to an
-- entry of the table takes the next value in the same transaction, so revisions are strictly
-- increasing per table and never reused. Rows are never deleted.
CREATE TABLE IF NOT EXISTS kv_tables (
  name        VARCHAR(64)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  rev         BIGINT UNSIGNED NOT NULL,
  -- Purge horizon: tombstones with rev <= purged_rev may have been purged, so a subscriber
  -- resuming from a revision below it must take a fresh snapshot instead.
  purged_rev  BIGINT UNSIGNED NOT NULL DEFAULT 0,
  created_at  DATETIME(6)     NOT NULL,
  PRIMARY KEY (name)
) ENGINE=InnoDB;

-- One row per key. Deleted and expired keys stay as tombstones (state 1 = deleted,
-- 2 = expired, v = NULL) until the expiry service purges them after the retention window.
-- The value is UTF-8 JSON text in a LONGBLOB, so MySQL and MariaDB log identical bytes.
CREATE TABLE IF NOT EXISTS kv_entries (
  tbl         VARCHAR(64)      CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  k           VARBINARY(255)   NOT NULL,
  v           LONGBLOB         NULL,
  rev         BIGINT UNSIGNED  NOT NULL,
  created_rev BIGINT UNSIGNED  NOT NULL,
  created_at  DATETIME(6)      NOT NULL,
  updated_at  DATETIME(6)      NOT NULL,
  expires_at  DATETIME(6)      NULL,
  state       TINYINT UNSIGNED NOT NULL DEFAULT 0,
  -- NULL for live keys, so puts on live keys never touch its index (unlike (state, updated_at)).
  tombstoned_at DATETIME(6) AS (IF(state <> 0, updated_at, NULL)) VIRTUAL,
  PRIMARY KEY (tbl, k),
  -- "Everything in table T changed after revision R" is one range scan (resume, changes feed).
  UNIQUE KEY ux_kv_entries_rev (tbl, rev),
  -- The expiry service finds due keys and old tombstones without scanning live data.
  KEY ix_kv_entries_expires (expires_at),
  KEY ix_kv_entries_tombstones (tombstoned_at)
) ENGINE=InnoDB;

-- Durable positions of named change-stream readers (KvStore.Cdc checkpoints).
CREATE TABLE IF NOT EXISTS kv_cdc_checkpoints (
  stream      VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  binlog_file VARCHAR(255) NOT NULL,
  binlog_pos  BIGINT UNSIGNED NOT NULL,
  gtid        VARCHAR(4096) NULL,
  server_id   INT UNSIGNED NULL,
  updated_at  DATETIME(6)  NOT NULL,
  PRIMARY KEY (stream)
) ENGINE=InnoDB;

INSERT INTO kv_schema_version (version, description, applied_at)
VALUES (1, 'initial', UTC_TIMESTAMP(6))
ON DUPLICATE KEY UPDATE version = version;
-- <<< migration V001

-- >>> migration V002
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
-- <<< migration V002
