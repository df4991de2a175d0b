#!/usr/bin/env bash
# Installs what KvStore's demo and tests need on Debian 12 when it is missing:
# MariaDB server and client (the tests and the demo start their own private mariadbd), npm (the demo
# web app's build restores @microsoft/signalr from package-lock.json), and on request:
#   chromium   headless Chromium for the browser tests (tests/KvStore.Samples.Tests)
#   redis      redis-server for the SignalR Redis backplane (the tests start a private one)
set -euo pipefail

need=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
command -v npm >/dev/null 2>&1 || need+=(npm)
for extra in "$@"; do
  case "$extra" in
    chromium) command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core) ;;
    redis) command -v redis-server >/dev/null 2>&1 || need+=(redis-server) ;;
  esac
done

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

echo "Installing: ${need[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "Please install as root: apt-get install ${need[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Debian's mariadb-server and redis-server start their system services; we never use them (our servers are private).
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
if command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now mariadb >/dev/null 2>&1 || true
  $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
