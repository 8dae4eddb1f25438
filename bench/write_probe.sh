#!/bin/bash
# What a write probe costs the controller (issue 15): CPU per write, libpq
# (postgres:) against hiredis (redis:), at 10 and 100 writes a second; and how
# long the read-back of 10,000 records takes for each.
#
# usage (as root, after `make build`): bench/write_probe.sh [BUILD_DIR]
#   SECONDS_10   how long the 10 writes/s runs last (default 60)
#   SECONDS_100  how long the 100 writes/s runs last (default 30)
#   REPS         read-back repetitions (default 30)
#   LOCK_FILE    the lock held while measuring (default /tmp/fl-serial.lock)
#
# Starts, on private ports and in a private directory under /var/tmp (ext4:
# every commit and every AOF write is fsynced to the disk): one PostgreSQL 15
# (initdb as postgres, Unix socket only, defaults: fsync on,
# synchronous_commit on) and one redis-server (127.0.0.1, AOF with
# appendfsync always, like the Redis bed), one faultline-agent and a dummy
# `sleep` (bench/http_bed.sh). For each datastore and rate: `faultline run`
# of an experiment with one write probe (interval 100ms or 10ms, timeout 1s,
# steady state on it) and a pause_process of the dummy for the run's length
# (user + system CPU of the controller in ms, from wait4 through bash's
# `times` in a subshell whose only child it is). The
# baseline is the same experiment, as long, whose probe is a tcp connect to
# the same server once a second: CPU per write = (run - baseline) / writes,
# so it counts what a write costs the whole controller (the probe runner,
# attempts.jsonl, the client library, the read-back at the end), not the
# controller's fixed cost. Write latency (the time to the acknowledgement)
# from attempts.jsonl, whole milliseconds. Then readback_bench reads back
# 10,000 records of one run, REPS times cold (a new connection, as after a
# failover) and warm. Each measurement holds /tmp/fl-serial.lock, so no serial
# test runs beside it. Everything is removed at the end.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
secs10=${SECONDS_10:-60}
secs100=${SECONDS_100:-30}
reps=${REPS:-30}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /var/tmp/flrd-bench-write.XXXXXX)
chmod 755 "$work"
pgbin=/usr/lib/postgresql/15/bin
pg_started=""
redis_pid=""
# shellcheck source=bench/http_bed.sh
source "$here/http_bed.sh"
cleanup() {
    [ -z "$redis_pid" ] || kill "$redis_pid" 2>/dev/null || true
    [ -z "$redis_pid" ] || wait "$redis_pid" 2>/dev/null || true
    [ -z "$pg_started" ] || as_pg "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
    bed_stop
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
exec 9>"${LOCK_FILE:-/tmp/fl-serial.lock}"

as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

# p50 p90 p99 max of the numbers on stdin (nearest rank)
pctl() {
    sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) { print "- - - -"; exit }
        split("50 90 99", q, " ")
        for (i = 1; i <= 3; i++) { r = int((q[i] * NR + 99) / 100); printf "%s ", v[r < 1 ? 1 : r] }
        print v[NR]
    }'
}

[ -x "$build/bench/readback_bench" ] || { echo "build first: $build/bench/readback_bench" >&2; exit 1; }
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data on $(findmnt -n -o FSTYPE --target "$work") ($work); $("$pgbin/postgres" --version); $(redis-server --version | cut -d' ' -f1-3)"

# ---------------------------------------------------------------- servers
pg_port=$(bed_free_port)
mkdir -p "$work/pgsock" "$work/pg"
chown postgres:postgres "$work/pgsock" "$work/pg"
as_pg "$pgbin/initdb" -D "$work/pg" -A trust -U postgres >"$work/initdb.log" 2>&1
as_pg "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pgsock/pg.log" -w \
    -o "-p $pg_port -k $work/pgsock -c listen_addresses=''" start >/dev/null
pg_started=1
dsn="host=$work/pgsock port=$pg_port dbname=postgres user=postgres"
psql_() { PGOPTIONS="-c client_min_messages=warning" as_pg "$pgbin/../bin/psql" -h "$work/pgsock" -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 -Atq "$@"; }

redis_port=$(bed_free_port)
mkdir -p "$work/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work/redis" --appendonly yes \
    --appendfsync always --save "" --daemonize no >"$work/redis.log" 2>&1 9>&- &
redis_pid=$!
for _ in $(seq 100); do
    [ "$(redis-cli -p "$redis_port" PING 2>/dev/null)" = PONG ] && break
    sleep 0.05
done
bed_start_agent
bed_start_victim

# experiment FILE NAME PROBE_YAML SECONDS
experiment() {
    cat >"$1" <<EOF
version: 1
name: $2
inventory:
  key_file: $work/key
  hosts:
    local: { address: 127.0.0.1, port: $AGENT_PORT }
probes:
$3
steady_state: [w]
faults:
  - name: pause-dummy
    target: { hosts: [local] }
    pause_process: { pid: $BED_VICTIM }
    start: 0s
    duration: ${4}s
EOF
}

# run NAME PROBE_YAML SECONDS: $work/NAME.res gets "cpu_seconds writes"
# (writes: lines of attempts.jsonl), $work/NAME.lat the latencies
run() {
    local name=$1 probe=$2 secs=$3
    experiment "$work/$name.yaml" "$name" "$probe" "$secs"
    flock 9
    # a subshell whose only child is the controller: its `times` (second
    # line: children's user and system CPU, in ms) is the controller's
    (
        "$build/faultline" run "$work/$name.yaml" --report-dir "$work/$name" \
            >"$work/$name.log" 2>&1 9>&-
        rc=$?
        times >"$work/$name.time"
        exit $rc
    ) || {
        echo "$name: the run failed:" >&2
        tail -20 "$work/$name.log" >&2
        exit 1
    }
    flock -u 9
    sed -n 's/.*"l":\([0-9]*\),"o":"ok".*/\1/p' "$work/$name/attempts.jsonl" >"$work/$name.lat"
    echo "$(awk 'NR == 2 {
            split($1, u, /[ms]/); split($2, s, /[ms]/)
            printf "%.3f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$work/$name.time")" \
        "$(wc -l <"$work/$name/attempts.jsonl")" >"$work/$name.res"
}

pg_probe() { echo "  - { name: w, postgres: { dsn: \"$dsn\" }, interval: $1, timeout: 1s }"; }
redis_probe() { echo "  - { name: w, redis: { address: \"127.0.0.1:$redis_port\" }, interval: $1, timeout: 1s }"; }
tcp_probe() { echo "  - { name: w, tcp: { address: \"127.0.0.1:$redis_port\" }, interval: 1s, timeout: 1s }"; }

echo
echo "| datastore | rate | run | writes | controller CPU | baseline CPU | CPU per write | ack latency p50 / p90 / p99 / max |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for rate in 10 100; do
    if [ "$rate" = 10 ]; then secs=$secs10 iv=100ms; else secs=$secs100 iv=10ms; fi
    run "base-$rate" "$(tcp_probe)" "$secs"
    read -r base_cpu _ <"$work/base-$rate.res"
    for ds in postgres redis; do
        if [ "$ds" = postgres ]; then p=$(pg_probe "$iv"); else p=$(redis_probe "$iv"); fi
        run "$ds-$rate" "$p" "$secs"
        read -r cpu writes <"$work/$ds-$rate.res"
        read -r p50 p90 p99 max < <(pctl <"$work/$ds-$rate.lat")
        per=$(awk -v c="$cpu" -v b="$base_cpu" -v n="$writes" 'BEGIN { printf "%.1f µs", (c - b) / n * 1e6 }')
        echo "| $ds | $rate/s | ${secs} s | $writes | ${cpu} s | ${base_cpu} s | $per | $p50 / $p90 / $p99 / $max ms |"
    done
done

# ---------------------------------------------------------------- read-back
psql_ -c "CREATE TABLE IF NOT EXISTS faultline_writes (run_id text, seq bigint, written_at bigint, PRIMARY KEY (run_id, seq))"
psql_ -c "INSERT INTO faultline_writes SELECT 'bench-readback', g, 0 FROM generate_series(1, 10000) g"
seq 1 10000 | awk '{printf "XADD faultline_writes * run bench-readback seq %d at 0\n", $1}' |
    redis-cli -p "$redis_port" >/dev/null
echo
echo "read-back of 10,000 records of one run (the table and the stream also hold the runs above), $reps reps:"
echo
echo "| datastore | connection | p50 | p90 | p99 | max |"
echo "| --- | --- | --- | --- | --- | --- |"
for ds in pg redis; do
    flock 9
    if [ "$ds" = pg ]; then
        "$build/bench/readback_bench" pg "$dsn" faultline_writes bench-readback "$reps" >"$work/rb-$ds" 9>&-
    else
        "$build/bench/readback_bench" redis "127.0.0.1:$redis_port" faultline_writes bench-readback "$reps" >"$work/rb-$ds" 9>&-
    fi
    flock -u 9
    awk '$3 != 10000 { print "read back " $3 " records, not 10000" > "/dev/stderr"; exit 1 }' "$work/rb-$ds"
    read -r c50 c90 c99 cmax < <(awk '{print $1}' "$work/rb-$ds" | pctl)
    read -r w50 w90 w99 wmax < <(awk '{print $2}' "$work/rb-$ds" | pctl)
    name=$([ "$ds" = pg ] && echo postgres || echo redis)
    echo "| $name | cold (connect included) | $c50 ms | $c90 ms | $c99 ms | $cmax ms |"
    echo "| $name | warm | $w50 ms | $w90 ms | $w99 ms | $wmax ms |"
done
