#!/bin/bash
# Agent benchmarks: idle RSS, and inject-to-applied latency for kill_process
# and network_drop. The agent runs in a network namespace of its own, with a
# state directory on the disk (/var/tmp), then on a tmpfs; everything is removed at the end.
# Then the SSH benchmarks (bench/ssh_latency.c): ssh probe latency with and
# without session reuse, and `faultline deploy` wall time, against a test sshd
# on the host's loopback, which that program starts and removes itself.
# usage (as root): bench/run.sh [BUILD_DIR] [N]
# (SSH_N, default 50, and SSH_R, default 3, set the SSH benchmark's counts;
# BENCH_SSH=0 skips it; IDLE_SECONDS, default 60, is the idle wake-up window.)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
n=${2:-200}
work=$(mktemp -d /var/tmp/faultline-bench.XXXXXX)
ns=fl-bench-$$
agent=""
cleanup() {
    [ -n "$agent" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null || true
    umount "$work/tmpfs" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

ip netns add "$ns"
ip -n "$ns" link set lo up
"$build/faultline" keygen "$work/key" >/dev/null
mkdir "$work/disk" "$work/tmpfs"
mount -t tmpfs -o size=64m,mode=0700 faultline-bench "$work/tmpfs"

# One agent per state directory: first on the disk (what /var/lib/faultline
# is in production; every journal record is fsynced), then on a tmpfs.
for where in disk tmpfs; do
    state="$work/$where/state"
    echo "state directory on $where ($(findmnt -n -o FSTYPE --target "$work/$where"))"
    ip netns exec "$ns" "$build/faultline-agent" --key "$work/key" --listen 127.0.0.1:0 \
        --state-dir "$state" >"$work/agent-$where.log" 2>&1 &
    agent=$!
    port=""
    for _ in $(seq 100); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/agent-$where.log")
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || { cat "$work/agent-$where.log"; exit 1; }
    sleep 0.5
    rss() { awk '/^VmRSS/ {print $2 " kB"}' "/proc/$agent/status"; }
    echo "  agent idle RSS:            $(rss)"
    if [ "$where" = disk ]; then
        # an idle agent sleeps: wake-ups are context switches of every thread
        wakeups() {
            cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'
        }
        guardian=$(pgrep -P "$agent" | head -1)
        a0=$(wakeups "$agent"); g0=$(wakeups "$guardian")
        sleep "${IDLE_SECONDS:-60}"
        a1=$(wakeups "$agent"); g1=$(wakeups "$guardian")
        echo "  idle wake-ups in ${IDLE_SECONDS:-60} s: agent $((a1 - a0)), guardian $((g1 - g0))"
    fi
    for kind in kill_process network_drop; do
        echo -n "  "
        ip netns exec "$ns" "$build/bench/inject_latency" "$port" "$work/key" "$kind" "$n"
    done
    echo "  agent RSS after $((2 * n)) faults: $(rss)"
    kill "$agent"
    wait "$agent" 2>/dev/null || true
    agent=""
done

[ "${BENCH_SSH:-1}" = 0 ] && exit 0
echo
"$build/bench/ssh_latency" "$build/faultline" "${SSH_N:-50}" "${SSH_R:-3}"
