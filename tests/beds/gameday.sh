#!/bin/sh
# The game-day bed: a small staging site on one machine, for `make demo` and
# the end-to-end tests.
#
#                       bridge (namespace PREFIX-sw), 10.77.0.0/24
#        ┌──────────────┬─────────────┼──────────────┬───────────────┐
#   client .100       lb .1        web1 .2        web2 .3
#   (controller)   HAProxy :8080   nginx :80      nginx :80
#                  :8081 web1 only webapp :8081   webapp :8081
#
# Every host is a network namespace with its own faultline-agent on :7411
# (process_scope netns, so it only touches that host's processes; lease 2s;
# its own state directory). HAProxy checks both web servers (inter 200ms,
# fall 3, rise 2; web2 is a backup that takes traffic when web1 is DOWN)
# and logs, with microsecond timestamps, when it marks a server DOWN or UP:
# STATE/lb/haproxy.log is the ground truth the tests measure against. The
# webapp's /health fails when its 32 MiB tmpfs (STATE/HOST/data) is nearly
# full. nginx and the webapp are supervised: restarted 3 s after they die.
#
#   gameday.sh up STATE BUILD [OWNER_PID]
#                                 bring it up (STATE must not exist); on any
#                                 failure it tears down what it made. With
#                                 OWNER_PID, a watcher tears the bed down if
#                                 that process dies first (a test that
#                                 crashed, or was killed by its timeout)
#   gameday.sh down STATE         tear everything down: agents first (they
#                                 revert their faults), then every process in
#                                 the namespaces, mounts, namespaces, STATE
#                                 and checks that nothing is left (exit 1 and
#                                 says what, if anything is)
#   gameday.sh exec STATE HOST CMD...   run CMD on HOST (in its namespace)
#
# STATE gets hosts.yaml (an inventory for --inventory) and faultline.key.
# Needs root, iproute2, haproxy, nginx, curl.
set -eu

ADDR_lb=10.77.0.1
ADDR_web1=10.77.0.2
ADDR_web2=10.77.0.3
ADDR_client=10.77.0.100
HOSTS="lb web1 web2 client"
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
BED_TAG=gameday
BED_KIND="game-day bed"
BED_MOUNTS=1
# shellcheck source=tests/beds/lib.sh
. "$(dirname "$SELF")/lib.sh"
RESTART_DELAY=${GAMEDAY_RESTART_DELAY:-3}

# ---------------------------------------------------------------- configs

write_agent_config() {
    local h=$1
    cat >"$STATE/$h/agent.yaml" <<EOF
# faultline-agent on $h: only this host's processes, fills only its data dir
listen: $(addr_of "$h"):7411
state_dir: $STATE/$h/state
lease: 2s
guardrails:
  process_scope: netns
  fill_paths: [$STATE/$h/data]
  max_fill: 99%
  fill_reserve: 1MiB
  max_duration: 10m
EOF
}

write_nginx_config() {
    local h=$1
    mkdir -p "$STATE/$h/nginx/logs"
    cat >"$STATE/$h/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
user root;
pid $STATE/$h/nginx/nginx.pid;
error_log $STATE/$h/nginx/logs/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $STATE/$h/nginx/body;
    proxy_temp_path $STATE/$h/nginx/proxy;
    fastcgi_temp_path $STATE/$h/nginx/fastcgi;
    uwsgi_temp_path $STATE/$h/nginx/uwsgi;
    scgi_temp_path $STATE/$h/nginx/scgi;
    server {
        listen $(addr_of "$h"):80;
        location = /health { default_type text/plain; return 200 "ok $h\n"; }
        location / { default_type text/plain; return 200 "hello from $h\n"; }
    }
}
EOF
}

write_haproxy_config() {
    cat >"$STATE/lb/haproxy.cfg" <<EOF
# The load balancer under test. The check settings are the known answer:
# a dead web1 is marked DOWN after fall (3) failed checks, one every inter
# (200ms): 400-600 ms after it died, plus a check's own timeout when its
# packets are dropped rather than refused.
global
    log stdout format iso local0 info
    pidfile $STATE/lb/haproxy.pid
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout check 200ms
    retries 1
frontend site
    bind $ADDR_lb:8080
    default_backend web
frontend solo
    bind $ADDR_lb:8081
    default_backend web1_only
backend web
    log global                  # server state changes only: the frontends log nothing
    option httpchk GET /health
    server web1 $ADDR_web1:80 check inter 200ms fall 3 rise 2
    server web2 $ADDR_web2:80 check inter 200ms fall 3 rise 2 backup
backend web1_only
    log global
    option httpchk GET /health
    server web1 $ADDR_web1:80 check inter 200ms fall 3 rise 2
EOF
}

write_inventory() {
    cat >"$STATE/hosts.yaml" <<EOF
# The game-day bed's hosts (tests/beds/gameday.sh): --inventory this file.
key_file: faultline.key
hosts:
  lb:     { address: $ADDR_lb, tags: [lb] }
  web1:   { address: $ADDR_web1, tags: [web, primary] }
  web2:   { address: $ADDR_web2, tags: [web, standby] }
  client: { address: $ADDR_client, tags: [client] }
EOF
}

# ---------------------------------------------------------------- processes

# Background processes are started with ip netns exec, not in_ns: a shell
# function with redirections leaks the shell's saved descriptors (the
# caller's stdout) into what it starts, and the caller would never see EOF.

# supervise HOST NAME CMD...: runs CMD in HOST's namespace, restarting it
# RESTART_DELAY seconds after it exits, as systemd's Restart= would.
supervise() {
    local h=$1 name=$2
    shift 2
    ip netns exec "$(ns_of "$h")" setsid sh -c 'while :; do "$@"; sleep '"$RESTART_DELAY"'; done' \
        "supervise-$name" "$@" >>"$STATE/$h/$name.log" 2>&1 </dev/null &
}

http_ok() { in_ns client curl -fsS -m 1 -o /dev/null "$1"; }

up() {
    [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
    [ ! -e "$1" ] || die "$1 exists: give a new directory"
    BUILD=$(cd "$2" && pwd)
    for b in faultline faultline-agent tests/webapp; do
        [ -x "$BUILD/$b" ] || die "$BUILD/$b is missing: build first"
    done
    for p in haproxy nginx curl ip; do
        command -v "$p" >/dev/null || die "$p is not installed (make deps installs it)"
    done
    mkdir -p "$1"
    STATE=$(cd "$1" && pwd)
    PREFIX=fg$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
    printf 'PREFIX=%s\nBUILD=%s\n' "$PREFIX" "$BUILD" >"$STATE/bed.env"
    trap 'echo "gameday: bring-up failed; tearing down" >&2; down_loaded' EXIT

    "$BUILD/faultline" keygen "$STATE/faultline.key" >/dev/null

    bed_switch_up
    for h in $HOSTS; do
        bed_host_up "$h"
        mkdir -p "$STATE/$h/data"
        write_agent_config "$h"
    done
    for h in web1 web2; do
        mount -t tmpfs -o size=32m "fl-gameday-$h" "$STATE/$h/data"
        write_nginx_config "$h"
        supervise "$h" nginx nginx -p "$STATE/$h/nginx" -c "$STATE/$h/nginx/nginx.conf"
        supervise "$h" webapp "$BUILD/tests/webapp" --listen "$(addr_of "$h"):8081" \
            --name "$h" --data-dir "$STATE/$h/data" --min-free 4MiB
    done
    write_haproxy_config
    : >"$STATE/lb/haproxy.log"
    ip netns exec "$(ns_of lb)" setsid haproxy -db -f "$STATE/lb/haproxy.cfg" \
        >>"$STATE/lb/haproxy.log" 2>"$STATE/lb/haproxy.err" </dev/null &
    for h in $HOSTS; do start_agent "$h"; done
    write_inventory

    for h in $HOSTS; do
        wait_for "agent on $h" 100 agent_listening "$h" ||
            { cat "$STATE/$h/agent.log" >&2; die "the agent on $h did not start"; }
    done
    for h in web1 web2; do
        wait_for "nginx on $h" 100 http_ok "http://$(addr_of "$h")/health" ||
            die "nginx on $h does not answer"
        wait_for "webapp on $h" 100 http_ok "http://$(addr_of "$h"):8081/health" ||
            die "the webapp on $h does not answer"
    done
    wait_for "haproxy" 100 http_ok "http://$ADDR_lb:8080/health" ||
        { cat "$STATE/lb/haproxy.err" >&2; die "haproxy does not answer on :8080"; }
    [ -z "$3" ] || start_watcher "$3"
    trap - EXIT
    echo "gameday: up in $STATE (namespaces $PREFIX-*): lb $ADDR_lb, web1 $ADDR_web1," \
        "web2 $ADDR_web2, client $ADDR_client"
}

# --------------------------------------------------------------- teardown

down_loaded() {
    trap - EXIT
    # the watcher first, unless it is what is running this
    if [ -f "$STATE/watch.pid" ]; then
        w=$(cat "$STATE/watch.pid")
        [ "$w" = "$PPID" ] || [ "$w" = "$$" ] || kill "$w" 2>/dev/null || true
    fi
    # agents first, with SIGTERM: each reverts its own faults
    agents=""
    for h in $HOSTS; do
        [ -f "$STATE/$h/agent.pid" ] && agents="$agents $(cat "$STATE/$h/agent.pid")"
    done
    # shellcheck disable=SC2086
    stop_pids TERM $agents
    for p in $agents; do
        wait_for "agent $p" 100 sh -c "! kill -0 $p" || kill -KILL "$p" 2>/dev/null || true
    done
    # then everything else living in the namespaces (supervisors first, so
    # nothing is restarted); stopped processes only die of KILL
    for h in $HOSTS sw; do
        ns=$(ns_of "$h")
        ip netns list 2>/dev/null | grep -q "^$ns\b" || continue
        # shellcheck disable=SC2046
        stop_pids TERM $(ns_pids "$ns")
        # shellcheck disable=SC2046
        stop_pids CONT $(ns_pids "$ns")
    done
    left=""
    for h in $HOSTS sw; do
        ns=$(ns_of "$h")
        wait_for "$ns empty" 30 sh -c "[ -z \"\$(ip netns pids $ns 2>/dev/null)\" ]" || {
            # shellcheck disable=SC2046
            stop_pids KILL $(ns_pids "$ns")
            wait_for "$ns empty" 30 sh -c "[ -z \"\$(ip netns pids $ns 2>/dev/null)\" ]" ||
                left="$left $(ns_pids "$ns" | tr '\n' ' ')"
        }
    done
    for h in web1 web2; do
        mountpoint -q "$STATE/$h/data" 2>/dev/null && umount "$STATE/$h/data"
    done
    for h in $HOSTS sw; do
        ip netns del "$(ns_of "$h")" 2>/dev/null || true
    done
    rm -rf "$STATE"
}

cmd=${1:-}
case "$cmd" in
up)
    [ $# -eq 3 ] || [ $# -eq 4 ] || die "usage: gameday.sh up STATE BUILD [OWNER_PID]"
    up "$2" "$3" "${4:-}"
    ;;
down)
    [ $# -eq 2 ] || die "usage: gameday.sh down STATE"
    down "$2"
    ;;
exec)
    [ $# -ge 4 ] || die "usage: gameday.sh exec STATE HOST CMD..."
    load_state "$2"
    h=$3
    shift 3
    exec ip netns exec "$(ns_of "$h")" "$@" # exec: the caller's pid is the command's
    ;;
*)
    die "usage: gameday.sh up STATE BUILD | down STATE | exec STATE HOST CMD..."
    ;;
esac
