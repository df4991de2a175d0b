#!/usr/bin/env bash
# Starts a private MariaDB for the demo in a data folder inside the repository (ignored by git),
# configured for KvStore.Cdc (ROW binlog, FULL image and metadata, GTID strict mode).
# Usage: scripts/local-mariadb.sh start|stop|status   (env: KVSTORE_DATA, KVSTORE_DB_PORT)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="${KVSTORE_DATA:-$root/.demo-data}"
port="${KVSTORE_DB_PORT:-3307}"
cnf="$data/my.cnf"
sock="$data/mysqld.sock"
user_arg=""
[ "$(id -u)" -eq 0 ] && user_arg="--user=root"

write_config() {
  mkdir -p "$data/db" "$data/binlog"
  cat > "$cnf" <<CNF
[mariadbd]
datadir=$data/db
port=$port
bind-address=127.0.0.1
socket=$sock
pid-file=$data/mysqld.pid
log-error=$data/mariadb.err
server_id=1
log_bin=$data/binlog/mariadb-bin
binlog_format=ROW
binlog_row_image=FULL
binlog_row_metadata=FULL
binlog_checksum=CRC32
gtid_strict_mode=ON
binlog_expire_logs_seconds=604800
max_allowed_packet=64M
# The demo user (no SUPER) runs the migrations, which create triggers (docs/operations.md, Privileges).
log_bin_trust_function_creators=1
skip-name-resolve
character_set_server=utf8mb4
default_time_zone=+00:00
innodb_buffer_pool_size=128M
CNF
}

case "${1:-start}" in
  start)
    if [ -S "$sock" ] && mariadb --socket="$sock" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
      echo "MariaDB already running on 127.0.0.1:$port"; exit 0
    fi
    write_config
    if [ ! -d "$data/db/mysql" ]; then
      echo "Initialising a new MariaDB data folder in $data"
      mariadb-install-db --defaults-file="$cnf" --auth-root-authentication-method=normal --skip-test-db $user_arg >"$data/install.log" 2>&1
    fi
    mariadbd --defaults-file="$cnf" $user_arg >/dev/null 2>&1 &
    for _ in $(seq 1 300); do
      if mariadb --socket="$sock" -uroot -e 'SELECT 1' >/dev/null 2>&1; then break; fi
      sleep 0.1
    done
    mariadb --socket="$sock" -uroot -e 'SELECT 1' >/dev/null 2>&1 || { echo "MariaDB did not start; see $data/mariadb.err" >&2; exit 1; }
    mariadb --socket="$sock" -uroot <<SQL
CREATE DATABASE IF NOT EXISTS kvstore CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'kvstore'@'127.0.0.1' IDENTIFIED BY 'kvstore-demo';
GRANT ALL PRIVILEGES ON kvstore.* TO 'kvstore'@'127.0.0.1';
GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'kvstore'@'127.0.0.1';
SQL
    echo "MariaDB running on 127.0.0.1:$port (data in $data)"
    ;;
  stop)
    if [ -S "$sock" ]; then
      mariadb --socket="$sock" -uroot -e 'SHUTDOWN' >/dev/null 2>&1 || true
      for _ in $(seq 1 300); do [ -S "$sock" ] || break; sleep 0.1; done
    fi
    echo "MariaDB stopped"
    ;;
  status)
    mariadb --socket="$sock" -uroot -e 'SELECT @@version' 2>/dev/null || echo "not running"
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
