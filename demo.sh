#!/usr/bin/env bash
# One command to see KvStore working: installs MariaDB if missing, starts a private server with
# the right binlog settings on a data folder inside the repo (.demo-data, kept between runs),
# applies the migrations and runs the demo web app (samples/KvStore.Demo): a realtime database
# page and an article page with claps. Ctrl+C stops everything it started.
#   ./demo.sh           run (reuses the data)
#   ./demo.sh --reset   wipe the demo data first
#   env: KVSTORE_DEMO_PORT (web, default 5080), KVSTORE_DB_PORT (MariaDB, default 3307)
set -euo pipefail
cd "$(dirname "$0")"
root="$(pwd)"
export KVSTORE_DATA="${KVSTORE_DATA:-$root/.demo-data}"
export KVSTORE_DB_PORT="${KVSTORE_DB_PORT:-3307}"
web_port="${KVSTORE_DEMO_PORT:-5080}"

if [ "${1:-}" = "--reset" ]; then
  bash scripts/local-mariadb.sh stop >/dev/null 2>&1 || true
  rm -rf "$KVSTORE_DATA"
  echo "Demo data reset."
fi

bash scripts/prerequisites.sh
bash scripts/local-mariadb.sh start
app=""
cleanup() {
  if [ -n "$app" ]; then kill -TERM "$app" 2>/dev/null || true; wait "$app" 2>/dev/null || true; fi
  bash "$root/scripts/local-mariadb.sh" stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export KVSTORE_CONNECTION="Server=127.0.0.1;Port=$KVSTORE_DB_PORT;Database=kvstore;User ID=kvstore;Password=kvstore-demo;SslMode=None"
dotnet run --project samples/KvStore.Console -- migrate "$KVSTORE_CONNECTION"
# The build restores the browser client from npm (package-lock.json) into wwwroot/lib.
dotnet build samples/KvStore.Demo --nologo -v quiet -clp:ErrorsOnly
url="http://127.0.0.1:$web_port"
echo
echo "KvStore demo: $url  (realtime database)   $url/article.html?id=hello-kvstore  (claps)"
echo "Press Ctrl+C to stop."
echo
# Run the built app directly (not `dotnet run`) so Ctrl+C reaches it and the trap can wait for it.
(cd samples/KvStore.Demo && ConnectionStrings__KvStore="$KVSTORE_CONNECTION" Urls="$url" \
  exec dotnet bin/Debug/net10.0/KvStore.Demo.dll) &
app=$!
wait "$app"
