#!/usr/bin/env bash
# Runs every test of the solution against real servers the tests start themselves
# (a private MariaDB per test assembly, a private redis-server for the backplane tests).
# Installs missing prerequisites first.
# Ends with one line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")"
bash scripts/prerequisites.sh chromium redis || exit 1   # chromium: tests/KvStore.Samples.Tests; redis: the backplane tests

log=$(mktemp)
dotnet test KvStore.sln --nologo "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

passed=$(grep -oE 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -oE 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
rm -f "$log"
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1 # the build or the runner failed before counting
fi
echo "$passed passed, $failed failed"
exit "$rc"
