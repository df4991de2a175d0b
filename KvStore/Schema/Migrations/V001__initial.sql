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
