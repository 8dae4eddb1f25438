#!/bin/bash
# Memory of an idle agent and its guardian: RSS and PSS of each (from
# /proc/PID/smaps_rollup) and their sums, just after start, after one
# controller connection (`faultline agents`), and after one network_drop
# fault was injected and reverted; and whether each maps libcrypto and
# libnftables (both loaded at first use). With DETAIL=1 it also lists the largest
# mappings of each process by RSS (from /proc/PID/smaps).
# The agent runs in a network namespace of its own with its state directory
# under /var/tmp; everything is removed at the end.
# usage (as root): bench/agent_rss.sh [BUILD_DIR]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
work=$(mktemp -d /var/tmp/faultline-rss.XXXXXX)
ns=fl-rss-$$
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
: >"$work/agent.log" # read before the agent's shell may have opened it
ip netns exec "$ns" "$build/faultline-agent" --key "$work/key" --listen 127.0.0.1:0 \
    --state-dir "$work/state" >"$work/agent.log" 2>&1 &
agent=$!
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/agent.log")
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || { cat "$work/agent.log"; exit 1; }
guardian=$(sed -n 's/.*guardian is PID \([0-9]*\).*/\1/p' "$work/agent.log")
sleep 0.5

# kB fields of smaps_rollup
field() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/smaps_rollup"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.2f MiB", k / 1024}'; }
report() {
    local ar ap gr gp
    ar=$(field "$agent" Rss); ap=$(field "$agent" Pss)
    gr=$(field "$guardian" Rss); gp=$(field "$guardian" Pss)
    printf '%-28s agent RSS %s PSS %s | guardian RSS %s PSS %s | sum RSS %s PSS %s\n' \
        "$1:" "$(mib "$ar")" "$(mib "$ap")" "$(mib "$gr")" "$(mib "$gp")" \
        "$(mib $((ar + gr)))" "$(mib $((ap + gp)))"
    if [ "${DETAIL:-0}" = 1 ]; then
        for p in "$agent" "$guardian"; do
            echo "  largest mappings of PID $p (RSS kB, name):"
            awk '/^[0-9a-f]+-[0-9a-f]+ / {name = ($6 == "" ? "[anon]" : $6)}
                 /^Rss:/ {rss[name] += $2}
                 END {for (n in rss) if (rss[n] > 0) printf "    %6d %s\n", rss[n], n}' \
                "/proc/$p/smaps" | sort -rn | head -"${DETAIL_N:-12}"
        done
    fi
}
mapped() {
    grep -q "$2" "/proc/$1/maps" && echo yes || echo no
}
libs() {
    echo "  libcrypto mapped: agent $(mapped "$agent" libcrypto), guardian $(mapped "$guardian" libcrypto);" \
        "libnftables mapped: agent $(mapped "$agent" libnftables), guardian $(mapped "$guardian" libnftables)"
}

report "idle, just started"
libs
ip netns exec "$ns" "$build/faultline" agents --key "$work/key" "127.0.0.1:$port" >/dev/null
sleep 0.2
report "idle, after one connection"
libs
id=$(ip netns exec "$ns" "$build/faultline" inject --key "$work/key" "127.0.0.1:$port" \
    network_drop protocol=tcp ports=9 peers=192.0.2.1 --duration 1m 2>"$work/inject.err" | tail -1) ||
    { cat "$work/inject.err"; exit 1; }
ip netns exec "$ns" "$build/faultline" revert --key "$work/key" "127.0.0.1:$port" "$id" >/dev/null
sleep 0.2
report "idle, after a network fault"
libs
