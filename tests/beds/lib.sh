# What the namespaced beds (gameday.sh, redis.sh, postgres.sh) share, sourced
# by each after it sets BED_TAG (its name in messages and in its watcher's
# process name) and BED_KIND (what load_state calls a directory that is not
# such a bed). Each host is a network namespace PREFIX-HOST with a veth eth0
# on the bridge br0 in PREFIX-sw, its address ADDR_HOST, its own
# faultline-agent, and its state under STATE/HOST.
# shellcheck shell=sh

die() { echo "$BED_TAG: $*" >&2; exit 1; }
addr_of() { eval "echo \$ADDR_$1"; }
ns_of() { echo "$PREFIX-$1"; }
in_ns() {
    local ns
    ns=$(ns_of "$1")
    shift
    ip netns exec "$ns" "$@"
}

load_state() {
    [ -f "$1/bed.env" ] || die "$1 is not a $BED_KIND (no bed.env)"
    STATE=$(cd "$1" && pwd)
    . "$STATE/bed.env"
}

# wait_for WHAT TENTHS CMD...: polls CMD every 0.1 s, TENTHS times at most.
wait_for() {
    local what=$1 tenths=$2 i
    shift 2
    i=0
    while ! "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -lt "$tenths" ] || return 1
        sleep 0.1
    done
    return 0
}

# The bridge: the namespace PREFIX-sw with br0 up.
bed_switch_up() {
    sw=$(ns_of sw)
    ip netns add "$sw"
    ip -n "$sw" link add br0 type bridge
    ip -n "$sw" link set br0 up
}

# A host on the bridge: its namespace, STATE/HOST, eth0 with its address, lo.
bed_host_up() {
    ns=$(ns_of "$1")
    mkdir -p "$STATE/$1"
    ip netns add "$ns"
    ip -n "$sw" link add "$1" type veth peer name eth0 netns "$ns"
    ip -n "$sw" link set "$1" master br0 up
    ip -n "$ns" addr add "$(addr_of "$1")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
}

# Background processes are started with ip netns exec, not in_ns: a shell
# function with redirections leaks the shell's saved descriptors (the
# caller's stdout) into what it starts, and the caller would never see EOF.
start_agent() {
    local h=$1
    mkdir -p "$STATE/$h/state"
    ip netns exec "$(ns_of "$h")" setsid "$BUILD/faultline-agent" --key "$STATE/faultline.key" \
        --config "$STATE/$h/agent.yaml" >"$STATE/$h/agent.log" 2>&1 </dev/null &
    echo $! >"$STATE/$h/agent.pid"
}
agent_listening() { grep -q "listening on" "$STATE/$1/agent.log"; }

# The watcher: tears the bed down once OWNER_PID has gone, unless `down`
# stops it first. Runs in the root namespace, detached from the caller.
start_watcher() {
    setsid sh -c 'while kill -0 "$1" 2>/dev/null && [ -f "$2/bed.env" ]; do sleep 1; done
                  [ -f "$2/bed.env" ] && exec "$3" down "$2"' \
        "$BED_TAG-watch" "$1" "$STATE" "$SELF" >/dev/null 2>&1 </dev/null &
    echo $! >"$STATE/watch.pid"
}

stop_pids() { # signal, pids...
    local sig=$1
    shift
    [ $# -gt 0 ] && kill "-$sig" "$@" 2>/dev/null || true
}
ns_pids() { ip netns pids "$1" 2>/dev/null || true; }

# down STATE: the bed's own down_loaded, then check_clean_loaded.
down() {
    [ -e "$1" ] || return 0
    load_state "$1"
    down_loaded
    check_clean_loaded
}

# Nothing of the bed left: no namespace, no mount under STATE (when
# BED_MOUNTS is set), no process that would not die (left), no STATE.
check_clean_loaded() {
    bad=0
    if ip netns list 2>/dev/null | grep -q "^$PREFIX-"; then
        echo "$BED_TAG: namespaces left: $(ip netns list | grep "^$PREFIX-" | tr '\n' ' ')" >&2
        bad=1
    fi
    if [ -n "${BED_MOUNTS:-}" ] && grep -q " $STATE/" /proc/mounts; then
        echo "$BED_TAG: mounts left under $STATE" >&2
        bad=1
    fi
    if [ -n "${left:-}" ]; then
        echo "$BED_TAG: processes that would not die:$left" >&2
        bad=1
    fi
    if [ -e "$STATE" ]; then
        echo "$BED_TAG: $STATE is left" >&2
        bad=1
    fi
    return $bad
}
