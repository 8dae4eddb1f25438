#!/bin/bash
# Agent benchmarks: idle RSS, and inject-to-applied latency for kill_process
# and network_drop. The agent runs in a network namespace of its own, with a
# state directory in a temporary folder; everything is removed at the end.
# Then the SSH benchmarks (bench/ssh_latency.c): ssh probe latency with and
# without session reuse, and `faultline deploy` wall time, against a test sshd
# on the host's loopback, which that program starts and removes itself.
# usage (as root): bench/run.sh [BUILD_DIR] [N]
# (SSH_N, default 50, and SSH_R, default 3, set the SSH benchmark's counts.)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
n=${2:-200}
work=$(mktemp -d /tmp/faultline-bench.XXXXXX)
ns=fl-bench-$$
agent=""
cleanup() {
    [ -n "$agent" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

ip netns add "$ns"
ip -n "$ns" link set lo up
"$build/faultline" keygen "$work/key" >/dev/null
ip netns exec "$ns" "$build/faultline-agent" --key "$work/key" --listen 127.0.0.1:0 \
    --state-dir "$work/state" >"$work/agent.log" 2>&1 &
agent=$!
for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/agent.log")
    [ -n "$port" ] && break
    sleep 0.05
done
sleep 0.5
rss() { awk '/^VmRSS/ {print $2 " kB"}' "/proc/$agent/status"; }
echo "agent idle RSS:            $(rss)"
for kind in kill_process network_drop; do
    ip netns exec "$ns" "$build/bench/inject_latency" "$port" "$work/key" "$kind" "$n"
done
echo "agent RSS after $((2 * n)) faults: $(rss)"

echo
"$build/bench/ssh_latency" "$build/faultline" "${SSH_N:-50}" "${SSH_R:-3}"
