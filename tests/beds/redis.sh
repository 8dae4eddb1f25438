#!/bin/sh
# The Redis bed: a primary, a replica and three Sentinels, each host a network
# namespace, for the data-loss known-answer tests (issue 15).
#
#                   bridge (namespace PREFIX-sw), 10.79.0.0/24
#     ┌───────────┬───────────┬──────┴────┬───────────┬───────────┐
#  client .100  redis1 .11   redis2 .12  sen1 .21    sen2 .22    sen3 .23
#  (controller) redis :6379  redis :6379 sentinel    sentinel    sentinel
#               agent :7411  agent :7411 :26379      :26379      :26379
#
# redis1 starts as the primary, redis2 as its replica; the Sentinels (quorum
# 2, down-after 1000 ms, failover-timeout 3000 ms) watch master "flrd". Both
# data nodes run with the AOF on and appendfsync always (either may be the
# primary after a failover), RDB snapshots off, diskless replication without
# delay; each has its own faultline-agent (process_scope netns, lease 2 s).
#
# The Sentinels have hosts of their own, not the data nodes': a network_drop
# on a data host (the replica's link to the primary, say) would otherwise
# cut that host's Sentinel from the primary too and change what the quorum
# sees, and a fault that kills or partitions a data host would take one of
# the three voters with it. Apart, a fault on a data host touches only the
# data path, as it would where Sentinels run beside the clients. They have no
# agent: nothing here injects faults into them.
#
# Each redis-server is supervised: restarted $REDISBED_RESTART_DELAY seconds
# (default 1) after it exits, as systemd's Restart= would, as a replica of
# the master the Sentinels name then, or as master if they name it. When it
# exits, the supervisor first copies its data directory, as the dead process
# left it, to
# STATE/HOST/crash-N (N counting from 1; STATE/HOST/last-crash holds N): the
# old primary's own files, for a truth read later in isolation, before a
# restart can make it a replica and resync it. While STATE/HOST/hold exists
# (`hold`), it is not restarted at all.
#
#   redis.sh up STATE BUILD [OWNER_PID]
#                                 bring it up (STATE must not exist); on any
#                                 failure it tears down what it made. With
#                                 OWNER_PID, a watcher tears the bed down if
#                                 that process dies first
#   redis.sh down STATE           agents first (they revert their faults), then
#                                 every process in the namespaces, the
#                                 namespaces and STATE; checks nothing is left
#                                 (exit 1 and says what, if anything is)
#   redis.sh exec STATE HOST CMD...   run CMD on HOST (in its namespace)
#   redis.sh cli STATE HOST ARGS...   redis-cli against HOST's redis (or its
#                                 Sentinel, on sen1..3) from the client host
#   redis.sh master STATE         the host the three Sentinels name as master
#                                 (exit 1 if they do not agree)
#   redis.sh wait-healthy STATE [SECONDS]
#                                 waits (default 60 s) until both data nodes
#                                 run, the Sentinels agree on the master, the
#                                 other node replicates it with its link up and
#                                 every Sentinel counts it as a healthy
#                                 replica; prints the master's host
#   redis.sh hold STATE HOST | release STATE HOST
#                                 keep HOST's redis-server from being
#                                 restarted / let it be restarted again
#   redis.sh sentinel-set STATE PARAM VALUE
#                                 SENTINEL SET flrd PARAM VALUE on all three
#
# STATE gets hosts.yaml (an inventory for --inventory) and faultline.key.
# Needs root, iproute2, redis-server, redis-sentinel, redis-cli.
set -eu

ADDR_redis1=10.79.0.11
ADDR_redis2=10.79.0.12
ADDR_sen1=10.79.0.21
ADDR_sen2=10.79.0.22
ADDR_sen3=10.79.0.23
ADDR_client=10.79.0.100
DATA_HOSTS="redis1 redis2"
SENTINEL_HOSTS="sen1 sen2 sen3"
HOSTS="$DATA_HOSTS $SENTINEL_HOSTS client"
MASTER=flrd
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
BED_TAG=redisbed
BED_KIND="Redis bed"
# shellcheck source=tests/beds/lib.sh
. "$(dirname "$SELF")/lib.sh"
RESTART_DELAY=${REDISBED_RESTART_DELAY:-1}

port_of() { case "$1" in sen*) echo 26379 ;; *) echo 6379 ;; esac; }
cli() { # HOST ARGS...: redis-cli from the client host
    local h=$1
    shift
    in_ns client redis-cli -h "$(addr_of "$h")" -p "$(port_of "$h")" "$@"
}

# ---------------------------------------------------------------- configs

write_agent_config() {
    local h=$1
    cat >"$STATE/$h/agent.yaml" <<EOF
# faultline-agent on $h: only this host's processes
listen: $(addr_of "$h"):7411
state_dir: $STATE/$h/state
lease: 2s
guardrails:
  process_scope: netns
  fill_paths: [$STATE/$h/data]
  max_duration: 10m
EOF
}

# The redis-server's config. Sentinel rewrites it (CONFIG REWRITE) when it
# makes the node a replica, as it would on a real host.
write_redis_config() {
    local h=$1
    cat >"$STATE/$h/redis.conf" <<EOF
bind $(addr_of "$h")
port 6379
protected-mode no
daemonize no
dir $STATE/$h/data
appendonly yes
appendfsync always
save ""
repl-diskless-sync yes
repl-diskless-sync-delay 0
EOF
    [ "$h" = redis1 ] || echo "replicaof $ADDR_redis1 6379" >>"$STATE/$h/redis.conf"
}

write_sentinel_config() {
    local h=$1
    cat >"$STATE/$h/sentinel.conf" <<EOF
bind $(addr_of "$h")
port 26379
protected-mode no
daemonize no
dir $STATE/$h
sentinel monitor $MASTER $ADDR_redis1 6379 2
sentinel down-after-milliseconds $MASTER 1000
sentinel failover-timeout $MASTER 3000
sentinel parallel-syncs $MASTER 1
EOF
}

write_inventory() {
    cat >"$STATE/hosts.yaml" <<EOF
# The Redis bed's hosts (tests/beds/redis.sh): --inventory this file.
# Sentinels: $ADDR_sen1:26379, $ADDR_sen2:26379, $ADDR_sen3:26379, master $MASTER
key_file: faultline.key
hosts:
  redis1: { address: $ADDR_redis1, tags: [redis] }
  redis2: { address: $ADDR_redis2, tags: [redis] }
EOF
}

# ---------------------------------------------------------------- processes

# redis-server on a data host, supervised: after each exit its data is
# copied to crash-N, then (unless held) it is started again -- as a replica
# of whatever master the Sentinels name by then, as a careful restart script
# would: started as a master with the data of its past life, a demoted
# primary would be one until the Sentinels noticed (up to 10 s), and take
# writes that are then thrown away.
start_redis() {
    local h=$1
    ip netns exec "$(ns_of "$h")" setsid sh -c '
        d=$1 delay=$2 me=$3 master=$4
        shift 4
        n=0
        while :; do
            redis-server "$d/redis.conf"
            n=$((n + 1))
            rm -rf "$d/crash-$n"
            cp -a "$d/data" "$d/crash-$n.tmp" && mv "$d/crash-$n.tmp" "$d/crash-$n" &&
                echo "$n" >"$d/last-crash"
            while [ -e "$d/hold" ]; do sleep 0.1; done
            sleep "$delay"
            m=""
            for s in "$@"; do
                m=$(redis-cli -h "$s" -p 26379 SENTINEL get-master-addr-by-name "$master" \
                    2>/dev/null | head -1)
                [ -z "$m" ] || break
            done
            if [ -n "$m" ]; then
                sed -i "/^\(replicaof\|slaveof\) /d" "$d/redis.conf"
                [ "$m" = "$me" ] || echo "replicaof $m 6379" >>"$d/redis.conf"
                echo "supervise: restarting; the Sentinels name $m as master"
            fi
        done' supervise-redis "$STATE/$h" "$RESTART_DELAY" "$(addr_of "$h")" "$MASTER" \
        "$ADDR_sen1" "$ADDR_sen2" "$ADDR_sen3" >>"$STATE/$h/redis.log" 2>&1 </dev/null &
}

start_sentinel() {
    local h=$1
    ip netns exec "$(ns_of "$h")" setsid redis-sentinel "$STATE/$h/sentinel.conf" \
        >>"$STATE/$h/sentinel.log" 2>&1 </dev/null &
}

pong() { [ "$(cli "$1" PING)" = PONG ]; }
link_up() { [ "$(info_field "$1" replication master_link_status)" = up ]; }

# "field:value" of INFO SECTION on HOST, or nothing.
info_field() { cli "$1" INFO "$2" 2>/dev/null | tr -d '\r' | sed -n "s/^$3://p"; }

# The host whose address the Sentinel on $1 names as master, or nothing.
sentinel_master() {
    local a d
    a=$(cli "$1" SENTINEL get-master-addr-by-name "$MASTER" 2>/dev/null | head -1)
    for d in $DATA_HOSTS; do
        [ "$a" != "$(addr_of "$d")" ] || echo "$d"
    done
    return 0
}

# Prints the master the three Sentinels agree on; 1 if they do not.
agreed_master() {
    local m="" s x
    for s in $SENTINEL_HOSTS; do
        x=$(sentinel_master "$s")
        [ -n "$x" ] || return 1
        [ -z "$m" ] || [ "$m" = "$x" ] || return 1
        m=$x
    done
    echo "$m"
}

# Healthy: the agreed master is a master with the other node connected and
# in sync, and every Sentinel sees exactly one replica, not down, and two
# other Sentinels.
healthy() {
    local m r s flags
    m=$(agreed_master) || return 1
    for r in $DATA_HOSTS; do [ "$r" = "$m" ] || break; done
    [ "$(info_field "$m" replication role)" = master ] || return 1
    [ "$(info_field "$r" replication role)" = slave ] || return 1
    [ "$(info_field "$r" replication master_host)" = "$(addr_of "$m")" ] || return 1
    [ "$(info_field "$r" replication master_link_status)" = up ] || return 1
    [ "$(info_field "$r" replication master_sync_in_progress)" = 0 ] || return 1
    for s in $SENTINEL_HOSTS; do
        flags=$(cli "$s" SENTINEL REPLICAS "$MASTER" 2>/dev/null | tr -d '\r' |
            awk 'p { print; p = 0 } $0 == "flags" { p = 1 }')
        [ "$flags" = slave ] || return 1
        cli "$s" SENTINEL MASTER "$MASTER" 2>/dev/null | tr -d '\r' |
            awk 'p { exit !($0 == 2) } $0 == "num-other-sentinels" { p = 1 }' || return 1
    done
    echo "$m"
}

up() {
    [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
    [ ! -e "$1" ] || die "$1 exists: give a new directory"
    BUILD=$(cd "$2" && pwd)
    for b in faultline faultline-agent; do
        [ -x "$BUILD/$b" ] || die "$BUILD/$b is missing: build first"
    done
    for p in redis-server redis-sentinel redis-cli ip; do
        command -v "$p" >/dev/null || die "$p is not installed (make deps installs it)"
    done
    mkdir -p "$1"
    STATE=$(cd "$1" && pwd)
    PREFIX=flrd$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
    printf 'PREFIX=%s\nBUILD=%s\n' "$PREFIX" "$BUILD" >"$STATE/bed.env"
    trap 'echo "redisbed: bring-up failed; tearing down" >&2; down_loaded' EXIT

    "$BUILD/faultline" keygen "$STATE/faultline.key" >/dev/null

    bed_switch_up
    for h in $HOSTS; do
        bed_host_up "$h"
    done
    for h in $DATA_HOSTS; do
        mkdir -p "$STATE/$h/data"
        write_agent_config "$h"
        write_redis_config "$h"
        start_redis "$h"
        start_agent "$h"
        wait_for "redis on $h" 100 pong "$h" ||
            { cat "$STATE/$h/redis.log" >&2; die "redis on $h does not answer"; }
    done
    wait_for "replication" 100 link_up redis2 ||
        { cat "$STATE/redis2/redis.log" >&2; die "redis2 does not replicate redis1"; }
    for h in $SENTINEL_HOSTS; do
        write_sentinel_config "$h"
        start_sentinel "$h"
    done
    write_inventory
    for h in $DATA_HOSTS; do
        wait_for "agent on $h" 100 agent_listening "$h" ||
            { cat "$STATE/$h/agent.log" >&2; die "the agent on $h did not start"; }
    done
    wait_for "sentinels" 300 healthy ||
        { cat "$STATE"/sen*/sentinel.log >&2; die "the Sentinels did not settle"; }
    [ -z "$3" ] || start_watcher "$3"
    trap - EXIT
    echo "redisbed: up in $STATE (namespaces $PREFIX-*): primary redis1 $ADDR_redis1:6379," \
        "replica redis2 $ADDR_redis2:6379, Sentinels $ADDR_sen1 $ADDR_sen2 $ADDR_sen3 :26379" \
        "(master $MASTER), client $ADDR_client"
}

# --------------------------------------------------------------- teardown

down_loaded() {
    trap - EXIT
    if [ -f "$STATE/watch.pid" ]; then
        w=$(cat "$STATE/watch.pid")
        [ "$w" = "$PPID" ] || [ "$w" = "$$" ] || kill "$w" 2>/dev/null || true
    fi
    # agents first, with SIGTERM: each reverts its own faults
    agents=""
    for h in $DATA_HOSTS; do
        [ -f "$STATE/$h/agent.pid" ] && agents="$agents $(cat "$STATE/$h/agent.pid")"
    done
    # shellcheck disable=SC2086
    stop_pids TERM $agents
    for p in $agents; do
        wait_for "agent $p" 100 sh -c "! kill -0 $p" || kill -KILL "$p" 2>/dev/null || true
    done
    # then everything else: KILL, so no supervisor restarts anything (and
    # redis-server writes nothing more); stopped processes die of it too
    for h in $HOSTS sw; do
        ns=$(ns_of "$h")
        ip netns list 2>/dev/null | grep -q "^$ns\b" || continue
        # shellcheck disable=SC2046
        stop_pids KILL $(ns_pids "$ns")
    done
    left=""
    for h in $HOSTS sw; do
        ns=$(ns_of "$h")
        wait_for "$ns empty" 50 sh -c "[ -z \"\$(ip netns pids $ns 2>/dev/null)\" ]" || {
            # shellcheck disable=SC2046
            stop_pids KILL $(ns_pids "$ns")
            wait_for "$ns empty" 30 sh -c "[ -z \"\$(ip netns pids $ns 2>/dev/null)\" ]" ||
                left="$left $(ns_pids "$ns" | tr '\n' ' ')"
        }
    done
    for h in $HOSTS sw; do
        ip netns del "$(ns_of "$h")" 2>/dev/null || true
    done
    rm -rf "$STATE"
}

data_host() {
    case " $DATA_HOSTS " in *" $1 "*) return 0 ;; esac
    die "$1 is not a data host ($DATA_HOSTS)"
}

cmd=${1:-}
case "$cmd" in
up)
    [ $# -eq 3 ] || [ $# -eq 4 ] || die "usage: redis.sh up STATE BUILD [OWNER_PID]"
    up "$2" "$3" "${4:-}"
    ;;
down)
    [ $# -eq 2 ] || die "usage: redis.sh down STATE"
    down "$2"
    ;;
exec)
    [ $# -ge 4 ] || die "usage: redis.sh exec STATE HOST CMD..."
    load_state "$2"
    h=$3
    shift 3
    exec ip netns exec "$(ns_of "$h")" "$@"
    ;;
cli)
    [ $# -ge 3 ] || die "usage: redis.sh cli STATE HOST ARGS..."
    load_state "$2"
    h=$3
    shift 3
    exec ip netns exec "$(ns_of client)" redis-cli -h "$(addr_of "$h")" -p "$(port_of "$h")" "$@"
    ;;
master)
    [ $# -eq 2 ] || die "usage: redis.sh master STATE"
    load_state "$2"
    agreed_master
    ;;
wait-healthy)
    [ $# -eq 2 ] || [ $# -eq 3 ] || die "usage: redis.sh wait-healthy STATE [SECONDS]"
    load_state "$2"
    wait_for "healthy" $((${3:-60} * 10)) healthy || {
        echo "redisbed: not healthy after ${3:-60} s; Sentinels say: $(agreed_master || echo disagree)" >&2
        exit 1
    }
    healthy
    ;;
hold | release)
    [ $# -eq 3 ] || die "usage: redis.sh $cmd STATE HOST"
    load_state "$2"
    data_host "$3"
    if [ "$cmd" = hold ]; then : >"$STATE/$3/hold"; else rm -f "$STATE/$3/hold"; fi
    ;;
sentinel-set)
    [ $# -eq 4 ] || die "usage: redis.sh sentinel-set STATE PARAM VALUE"
    load_state "$2"
    for s in $SENTINEL_HOSTS; do
        [ "$(cli "$s" SENTINEL SET "$MASTER" "$3" "$4" | tr -d '\r')" = OK ] ||
            die "the Sentinel on $s refused SET $3 $4"
    done
    ;;
*)
    die "usage: redis.sh up STATE BUILD | down STATE | exec STATE HOST CMD... | cli STATE HOST ARGS..." \
        "| master STATE | wait-healthy STATE [S] | hold|release STATE HOST | sentinel-set STATE P V"
    ;;
esac
