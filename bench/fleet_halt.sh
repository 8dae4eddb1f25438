#!/bin/bash
# `faultline halt --inventory` on a large fleet under a small descriptor limit
# (issue 12): N agents (default 2000), each in its own network namespace and
# holding a pause_process fault, the controller under `ulimit -n` L (default
# 256, soft and hard). It runs tests/integration/fleet_test.c at that size
# (which builds the fleet, checks that `agents` lists every host UP, that halt
# confirms every host and ends every fault, and removes everything), under
# the shared serial lock, and prints the halt's figures with the conditions.
# usage (as root): bench/fleet_halt.sh [BUILD_DIR] [N] [L]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
n=${2:-2000}
lim=${3:-256}
out=$(mktemp /tmp/flfleet-bench.XXXXXX)
trap 'rm -f "$out"' EXIT
echo "fleet_halt: $n agents, controller under ulimit -n $lim"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
rc=0
FL_FLEET_N=$n FL_FLEET_NOFILE=$lim flock /tmp/fl-serial.lock "$build/tests/fleet_test" >"$out" 2>&1 || rc=$?
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
grep -E '^fleet of|^halt of|^halt: |PASSED|FAILED|ERROR' "$out" || true
if [ "$rc" != 0 ]; then
    echo "fleet_halt: the test failed (exit $rc); its output:" >&2
    tail -50 "$out" >&2
fi
exit "$rc"
