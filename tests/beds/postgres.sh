#!/bin/sh
# The PostgreSQL failover bed: the orders database of experiments/
# db-failover-dr.yaml on one machine, for the known-answer tests and the
# third act of `make demo`.
#
#                      bridge (namespace PREFIX-sw), 10.77.0.0/24
#            ┌──────────────────┼───────────────────┐
#       client .100          db1 .10 (+ .20)       db2 .11
#      (controller)         primary :5432         standby :5432
#                            repmgrd               repmgrd
#
# Every host is a network namespace with its own faultline-agent on :7411
# (process_scope netns, lease 2s). PostgreSQL 15 runs as the postgres user;
# db2 is a streaming standby of db1 (pg_basebackup -R), both registered with
# repmgr, and repmgrd on each (failover=automatic, monitor_interval_secs=1,
# reconnect_attempts=2, reconnect_interval=1: repmgr's documented detection
# time is reconnect_attempts x reconnect_interval = 2 s after the first
# failed check). Nothing restarts a killed postmaster: a dead primary stays
# dead, as after a lost host, and never rejoins.
#
# The WAL stream alone uses db1's second address, 10.77.0.20: clients,
# repmgr and `where:` checks use 10.77.0.10, so a network_drop on db2 with
# peers [10.77.0.20] cuts replication and nothing else (repmgrd keeps seeing
# its upstream, so it does not fail over because of the cut).
#
# Clients reach the primary through the multi-host DSN of the experiment:
#   host=10.77.0.10,10.77.0.11 port=5432,5432 dbname=orders user=faultline
#   target_session_attrs=read-write
# (trust authentication on the bridge: this is a test bed.)
#
# Modes: sync  -- synchronous_commit = on and synchronous_standby_names =
#                 'n2' on db1 only: a commit returns once db2 has flushed it.
#                 The promoted db2 has no synchronous_standby_names: with
#                 'n1' there (a symmetric setup) every commit on the new
#                 primary waits for the dead n1 for ever (seen: wait event
#                 SyncRep, not ended by statement_timeout).
#        async -- no synchronous standby.
#
#   postgres.sh up STATE BUILD sync|async [OWNER_PID]
#                                 bring it up (STATE must not exist; its
#                                 parents must be searchable by the postgres
#                                 user). On any failure it tears down what it
#                                 made. With OWNER_PID, a watcher tears the
#                                 bed down if that process dies first
#   postgres.sh down STATE        tear everything down: agents first (they
#                                 revert their faults), then every process in
#                                 the namespaces, System V segments a killed
#                                 postmaster left, namespaces, STATE; checks
#                                 nothing is left (exit 1 and says what)
#   postgres.sh exec STATE HOST CMD...   run CMD on HOST (in its namespace)
#   postgres.sh sql STATE HOST SQL       psql -Atc SQL on HOST's database
#                                 orders, through its Unix socket
#   postgres.sh isolate STATE HOST       copy HOST's data directory (its
#                                 server must be dead) and start the copy
#                                 ALONE: no TCP (listen_addresses = ''), a
#                                 private socket and port, no recovery
#                                 signal, no replication, no repmgr; crash
#                                 recovery replays what HOST had written.
#                                 Then `sql STATE HOST-isolated SQL` reads it
#
# STATE gets hosts.yaml (an inventory for --inventory), faultline.key, and
# per host: pgdata/, postgres.log (ms timestamps), repmgr.conf, repmgrd.log.
# Needs root, iproute2, postgresql-15, postgresql-15-repmgr.
set -eu

ADDR_db1=10.77.0.10
ADDR_db2=10.77.0.11
ADDR_client=10.77.0.100
REPL_ADDR=10.77.0.20 # db1's second address: the WAL stream only
HOSTS="db1 db2 client"
PGBIN=/usr/lib/postgresql/15/bin
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
BED_TAG=postgres-bed
BED_KIND="PostgreSQL bed"
# shellcheck source=tests/beds/lib.sh
. "$(dirname "$SELF")/lib.sh"

as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
node_of() { case "$1" in db1) echo 1 ;; db2) echo 2 ;; *) die "no database host $1" ;; esac; }

# sql_on HOST DB SQL: psql on HOST's socket, as postgres, in its namespace
sql_on() {
    in_ns "$1" "$PGBIN/psql" -h "$STATE/$1/sock" -p 5432 -U postgres -d "$2" \
        -v ON_ERROR_STOP=1 -Atc "$3"
}
sql_says() { [ "$(sql_on "$1" "$2" "$3" 2>/dev/null)" = "$4" ]; }

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
  max_duration: 10m
EOF
}

write_pg_config() { # HOST
    local h=$1
    cat >>"$STATE/$h/pgdata/postgresql.conf" <<EOF
# the PostgreSQL bed (tests/beds/postgres.sh)
port = 5432
listen_addresses = '*'
unix_socket_directories = '$STATE/$h/sock'
shared_preload_libraries = 'repmgr'
wal_level = replica
max_wal_senders = 5
max_replication_slots = 5
hot_standby = on
wal_log_hints = on
wal_receiver_status_interval = 1
# fsync off: the bed kills processes, never the machine, and the page cache
# outlives a process; a 2-core machine shared with others is spared the
# flushes
fsync = off
log_line_prefix = '%m [%p] '
log_min_messages = warning
EOF
}

write_repmgr_conf() { # HOST
    local h=$1 n
    n=$(node_of "$h")
    cat >"$STATE/$h/repmgr.conf" <<EOF
node_id=$n
node_name='n$n'
conninfo='host=$(addr_of "$h") port=5432 user=postgres dbname=repmgr connect_timeout=2'
data_directory='$STATE/$h/pgdata'
pg_bindir='$PGBIN'
failover='automatic'
promote_command='$PGBIN/repmgr standby promote -f $STATE/$h/repmgr.conf --log-to-file'
follow_command='$PGBIN/repmgr standby follow -f $STATE/$h/repmgr.conf --log-to-file --upstream-node-id=%n'
monitor_interval_secs=1
reconnect_attempts=2
reconnect_interval=1
log_level='INFO'
log_file='$STATE/$h/repmgrd.log'
repmgrd_pid_file='$STATE/$h/repmgrd.pid'
EOF
}

write_inventory() {
    cat >"$STATE/hosts.yaml" <<EOF
# The PostgreSQL bed's hosts (tests/beds/postgres.sh, $MODE): --inventory this file.
key_file: faultline.key
hosts:
  db1:    { address: $ADDR_db1, tags: [db] }
  db2:    { address: $ADDR_db2, tags: [db] }
  client: { address: $ADDR_client, tags: [client] }
EOF
}

# ---------------------------------------------------------------- processes

# Background processes are started with ip netns exec, not in_ns (see
# gameday.sh: a shell function with redirections leaks descriptors).

start_postgres() { # HOST [DATADIR [LOG]]
    local h=$1 data=${2:-$STATE/$1/pgdata} log=${3:-$STATE/$1/postgres.log}
    ip netns exec "$(ns_of "$h")" setsid setpriv --reuid=postgres --regid=postgres \
        --init-groups -- "$PGBIN/postgres" -D "$data" >>"$log" 2>&1 </dev/null &
}

start_repmgrd() { # HOST
    local h=$1
    ip netns exec "$(ns_of "$h")" setsid env TZ=UTC setpriv --reuid=postgres --regid=postgres \
        --init-groups -- "$PGBIN/repmgrd" -f "$STATE/$h/repmgr.conf" --daemonize=false \
        >>"$STATE/$h/repmgrd.out" 2>&1 </dev/null &
}

up() {
    [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
    [ ! -e "$1" ] || die "$1 exists: give a new directory"
    case "$3" in sync | async) MODE=$3 ;; *) die "mode is sync or async, not '$3'" ;; esac
    BUILD=$(cd "$2" && pwd)
    for b in faultline faultline-agent; do
        [ -x "$BUILD/$b" ] || die "$BUILD/$b is missing: build first"
    done
    for p in "$PGBIN/postgres" "$PGBIN/repmgr" "$PGBIN/repmgrd" ip setpriv; do
        command -v "$p" >/dev/null ||
            die "$p is not installed (postgresql-15 and postgresql-15-repmgr: make deps)"
    done
    id postgres >/dev/null 2>&1 || die "no postgres user (install postgresql-15)"
    mkdir -p "$1"
    STATE=$(cd "$1" && pwd)
    chmod 755 "$STATE"
    PREFIX=flpg$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
    printf 'PREFIX=%s\nBUILD=%s\nMODE=%s\n' "$PREFIX" "$BUILD" "$MODE" >"$STATE/bed.env"
    trap 'echo "postgres-bed: bring-up failed; tearing down" >&2; down_loaded' EXIT
    as_pg test -x "$STATE" ||
        die "the postgres user cannot reach $STATE: its parents must be searchable (chmod o+x)"

    "$BUILD/faultline" keygen "$STATE/faultline.key" >/dev/null

    bed_switch_up
    for h in $HOSTS; do
        bed_host_up "$h"
        write_agent_config "$h"
    done
    ip -n "$(ns_of db1)" addr add "$REPL_ADDR/24" dev eth0
    for h in db1 db2; do
        mkdir -p "$STATE/$h/sock"
        : >"$STATE/$h/postgres.log"
        chown postgres:postgres "$STATE/$h" "$STATE/$h/sock" "$STATE/$h/postgres.log"
        write_repmgr_conf "$h"
    done

    # db1: the primary
    out=$(as_pg "$PGBIN/initdb" -D "$STATE/db1/pgdata" -U postgres --auth=trust -N 2>&1) ||
        die "initdb: $out"
    write_pg_config db1
    cat >"$STATE/db1/pgdata/pg_hba.conf" <<EOF
local all all trust
local replication all trust
host all all 10.77.0.0/24 trust
host replication all 10.77.0.0/24 trust
EOF
    start_postgres db1
    wait_for "db1" 300 sql_says db1 postgres "SELECT 1" 1 ||
        { cat "$STATE/db1/postgres.log" >&2; die "PostgreSQL on db1 did not start"; }
    out=$(sql_on db1 postgres "CREATE ROLE faultline LOGIN" 2>&1 &&
        sql_on db1 postgres "CREATE DATABASE orders OWNER faultline" 2>&1 &&
        sql_on db1 postgres "CREATE DATABASE repmgr" 2>&1) || die "databases: $out"
    out=$(in_ns db1 setpriv --reuid=postgres --regid=postgres --init-groups -- "$PGBIN/repmgr" -f "$STATE/db1/repmgr.conf" primary register 2>&1) ||
        die "repmgr primary register: $out"

    # db2: a streaming standby, the WAL stream from db1's second address
    out=$(in_ns db2 setpriv --reuid=postgres --regid=postgres --init-groups -- \
        "$PGBIN/pg_basebackup" -h "$REPL_ADDR" -p 5432 -U postgres -D "$STATE/db2/pgdata" \
        -X stream -R -c fast 2>&1) || die "pg_basebackup: $out"
    sed -i "s|^unix_socket_directories = .*|unix_socket_directories = '$STATE/db2/sock'|" \
        "$STATE/db2/pgdata/postgresql.conf"
    echo "primary_conninfo = 'host=$REPL_ADDR port=5432 user=postgres application_name=n2'" \
        >>"$STATE/db2/pgdata/postgresql.auto.conf"
    start_postgres db2
    wait_for "db2" 300 sql_says db2 postgres "SELECT pg_is_in_recovery()" t ||
        { cat "$STATE/db2/postgres.log" >&2; die "PostgreSQL on db2 did not start as a standby"; }
    out=$(in_ns db2 setpriv --reuid=postgres --regid=postgres --init-groups -- "$PGBIN/repmgr" -f "$STATE/db2/repmgr.conf" standby register 2>&1) ||
        die "repmgr standby register: $out"
    # repmgrd on db2 reads its own node record from db2: wait until the
    # registration has been replayed there
    wait_for "registration on db2" 300 sql_says db2 repmgr "SELECT count(*) FROM repmgr.nodes" 2 ||
        die "db2 never replayed its repmgr registration"
    if [ "$MODE" = sync ]; then
        out=$(sql_on db1 postgres "ALTER SYSTEM SET synchronous_standby_names = 'n2'" 2>&1 &&
            sql_on db1 postgres "ALTER SYSTEM SET synchronous_commit = on" 2>&1 &&
            sql_on db1 postgres "SELECT pg_reload_conf()" 2>&1) ||
            die "synchronous_standby_names: $out"
    fi
    wait_for "replication" 300 sql_says db1 postgres \
        "SELECT application_name || '|' || sync_state FROM pg_stat_replication" "n2|$MODE" || {
        sql_on db1 postgres "SELECT * FROM pg_stat_replication" >&2 || true
        die "db2 is not a $MODE standby of db1"
    }
    for h in db1 db2; do start_repmgrd "$h"; done
    for h in $HOSTS; do start_agent "$h"; done
    write_inventory

    for h in $HOSTS; do
        wait_for "agent on $h" 100 agent_listening "$h" ||
            { cat "$STATE/$h/agent.log" >&2; die "the agent on $h did not start"; }
    done
    wait_for "repmgrd on db2" 300 grep -q "monitoring connection to upstream node" \
        "$STATE/db2/repmgrd.log" ||
        { cat "$STATE/db2/repmgrd.out" "$STATE/db2/repmgrd.log" >&2 || true; die "repmgrd on db2 never monitored db1"; }
    # the client's path: the multi-host DSN finds the primary
    wait_for "client" 100 in_ns client "$PGBIN/psql" \
        "host=$ADDR_db1,$ADDR_db2 port=5432,5432 dbname=orders user=faultline target_session_attrs=read-write connect_timeout=2" \
        -Atc "SELECT 1" || die "the client cannot reach the primary through the DSN"
    [ -z "$4" ] || start_watcher "$4"
    trap - EXIT
    echo "postgres-bed: up ($MODE) in $STATE (namespaces $PREFIX-*): db1 $ADDR_db1 (primary;" \
        "WAL stream from $REPL_ADDR), db2 $ADDR_db2 (standby), client $ADDR_client"
}

isolate() { # HOST
    local h=$1 n data copy
    n=$(node_of "$h")
    data=$STATE/$h/pgdata
    copy=$STATE/$h-isolated
    [ ! -e "$copy" ] || die "$copy exists: $h was isolated already"
    if [ -f "$data/postmaster.pid" ]; then
        pid=$(head -1 "$data/postmaster.pid")
        ! kill -0 "$pid" 2>/dev/null || die "$h's postmaster ($pid) is alive: isolate a dead server"
    fi
    mkdir -p "$copy/sock"
    cp -a "$data" "$copy/pgdata"
    rm -f "$copy/pgdata/postmaster.pid" "$copy/pgdata/standby.signal" \
        "$copy/pgdata/recovery.signal"
    # the copy's own settings last: they win over postgresql.auto.conf too
    # (ALTER SYSTEM's file is read after postgresql.conf, so it is emptied)
    : >"$copy/pgdata/postgresql.auto.conf"
    cat >>"$copy/pgdata/postgresql.conf" <<EOF
# isolated copy of $h (postgres.sh isolate): no TCP, no replication, alone
listen_addresses = ''
port = 5499
unix_socket_directories = '$copy/sock'
shared_preload_libraries = ''
primary_conninfo = ''
synchronous_standby_names = ''
archive_mode = off
EOF
    chown -R postgres:postgres "$copy"
    : >"$copy/postgres.log"
    chown postgres:postgres "$copy/postgres.log"
    start_postgres "$h" "$copy/pgdata" "$copy/postgres.log"
    wait_for "isolated $h" 300 in_ns "$h" "$PGBIN/psql" -h "$copy/sock" -p 5499 -U postgres \
        -d orders -Atc "SELECT 1" ||
        { cat "$copy/postgres.log" >&2; die "the isolated copy of $h did not start"; }
    echo "postgres-bed: $h's data directory runs alone in $copy (socket only, port 5499)"
}

# --------------------------------------------------------------- teardown

# A killed postmaster leaves its System V segment: its id is on the seventh
# line of postmaster.pid. Removed only when nothing is attached to it.
remove_shm() { # DATADIR
    [ -f "$1/postmaster.pid" ] || return 0
    id=$(sed -n '7p' "$1/postmaster.pid" | awk '{print $2}')
    [ -n "$id" ] || return 0
    ipcs -m | awk -v id="$id" '$2 == id && $6 == 0 { found = 1 } END { exit !found }' &&
        ipcrm -m "$id" 2>/dev/null || true
}

down_loaded() {
    trap - EXIT
    if [ -f "$STATE/watch.pid" ]; then
        w=$(cat "$STATE/watch.pid")
        [ "$w" = "$PPID" ] || [ "$w" = "$$" ] || kill "$w" 2>/dev/null || true
    fi
    agents=""
    for h in $HOSTS; do
        [ -f "$STATE/$h/agent.pid" ] && agents="$agents $(cat "$STATE/$h/agent.pid")"
    done
    # shellcheck disable=SC2086
    stop_pids TERM $agents
    for p in $agents; do
        wait_for "agent $p" 100 sh -c "! kill -0 $p" || kill -KILL "$p" 2>/dev/null || true
    done
    # then everything else in the namespaces: repmgrd first (it would
    # promote), then PostgreSQL with SIGQUIT (immediate shutdown), the rest
    for h in $HOSTS sw; do
        ns=$(ns_of "$h")
        ip netns list 2>/dev/null | grep -q "^$ns\b" || continue
        for p in $(ns_pids "$ns"); do
            case "$(cat /proc/"$p"/comm 2>/dev/null)" in
            repmgrd | repmgr) kill -KILL "$p" 2>/dev/null || true ;;
            postgres) kill -QUIT "$p" 2>/dev/null || true ;;
            *) kill -TERM "$p" 2>/dev/null || true ;;
            esac
        done
        # shellcheck disable=SC2046
        stop_pids CONT $(ns_pids "$ns")
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
    for d in "$STATE/db1/pgdata" "$STATE/db2/pgdata" "$STATE/db1-isolated/pgdata" \
        "$STATE/db2-isolated/pgdata"; do
        remove_shm "$d"
    done
    for h in $HOSTS sw; do
        ip netns del "$(ns_of "$h")" 2>/dev/null || true
    done
    rm -rf "$STATE"
}

cmd=${1:-}
case "$cmd" in
up)
    [ $# -eq 4 ] || [ $# -eq 5 ] || die "usage: postgres.sh up STATE BUILD sync|async [OWNER_PID]"
    up "$2" "$3" "$4" "${5:-}"
    ;;
down)
    [ $# -eq 2 ] || die "usage: postgres.sh down STATE"
    down "$2"
    ;;
exec)
    [ $# -ge 4 ] || die "usage: postgres.sh exec STATE HOST CMD..."
    load_state "$2"
    h=$3
    shift 3
    exec ip netns exec "$(ns_of "$h")" "$@"
    ;;
sql)
    [ $# -eq 4 ] || die "usage: postgres.sh sql STATE HOST|HOST-isolated SQL"
    load_state "$2"
    case "$3" in
    *-isolated)
        h=${3%-isolated}
        exec ip netns exec "$(ns_of "$h")" "$PGBIN/psql" -h "$STATE/$3/sock" -p 5499 \
            -U postgres -d orders -v ON_ERROR_STOP=1 -Atc "$4"
        ;;
    *) sql_on "$3" orders "$4" ;;
    esac
    ;;
isolate)
    [ $# -eq 3 ] || die "usage: postgres.sh isolate STATE HOST"
    load_state "$2"
    isolate "$3"
    ;;
*)
    die "usage: postgres.sh up STATE BUILD sync|async [OWNER_PID] | down STATE | exec STATE HOST CMD... | sql STATE HOST SQL | isolate STATE HOST"
    ;;
esac
