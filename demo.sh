#!/usr/bin/env bash
# One command to see KvStore working: installs MariaDB if missing, starts a private server with
# the right binlog settings on a data folder inside the repo (.demo-data, kept between runs),
# applies the migrations and runs the demo. Ctrl+C stops everything it started.
#   ./demo.sh           run (reuses the data)
#   ./demo.sh --reset   wipe the demo data first
set -euo pipefail
cd "$(dirname "$0")"
root="$(pwd)"
export KVSTORE_DATA="${KVSTORE_DATA:-$root/.demo-data}"
export KVSTORE_DB_PORT="${KVSTORE_DB_PORT:-3307}"

if [ "${1:-}" = "--reset" ]; then
  bash scripts/local-mariadb.sh stop >/dev/null 2>&1 || true
  rm -rf "$KVSTORE_DATA"
  echo "Demo data reset."
fi

bash scripts/prerequisites.sh
bash scripts/local-mariadb.sh start
cleanup() { bash scripts/local-mariadb.sh stop; }
trap cleanup EXIT INT TERM

export KVSTORE_CONNECTION="Server=127.0.0.1;Port=$KVSTORE_DB_PORT;Database=kvstore;User ID=kvstore;Password=kvstore-demo;SslMode=None"
dotnet run --project samples/KvStore.Console -- migrate "$KVSTORE_CONNECTION"
dotnet run --project samples/KvStore.Console --no-build -- demo "$KVSTORE_CONNECTION"
