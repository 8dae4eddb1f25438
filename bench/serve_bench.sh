#!/bin/sh
# faultline serve with many schedules loaded, and history over many rows
# (issue 16). No root needed, no network but loopback, no agent (nothing
# runs: every schedule is due an hour or more after the start).
#
#   bench/serve_bench.sh [BUILD_DIR] [N_SCHEDULES] [SECONDS] [ROWS]
#
# 1. N experiment files (default 1000): half `every: 1h`, half cron
#    schedules far from now in four zones; serve loads them; after it settles
#    (5 s), over SECONDS (default 60): CPU time (utime+stime of every thread,
#    /proc/PID/stat), wakeups (voluntary + involuntary context switches of
#    every thread, /proc/PID/task/*/status), RSS (VmRSS) at the end; the time
#    GET / takes (the page reads each experiment's last rows), median of 5.
# 2. ROWS (default 100000) history rows inserted with sqlite3 (each with a
#    1 KiB run_json), then `faultline history` timed, median of 7 runs each:
#    the default table (100 rows), --limit 0 (every row) as table and --json,
#    one experiment; and GET /api/runs?limit=1000 against serve on that db.
# 3. Next-fire per schedule: BUILD_DIR/bench/schedule_bench (cron with tz).
# Everything lives in a temporary folder removed at the end.
set -eu
BUILD=${1:-build}
N=${2:-1000}
SECS=${3:-60}
ROWS=${4:-100000}
BIN=$(cd "$BUILD" && pwd)/faultline
[ -x "$BIN" ] || { echo "no $BIN: build first" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 is needed (apt-get install sqlite3)" >&2; exit 1; }
T=$(mktemp -d /tmp/flui-serve-bench.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

"$BIN" keygen "$T/key" >/dev/null
mkdir "$T/exps" "$T/reports"
zones="UTC Europe/Berlin America/New_York Australia/Lord_Howe"
i=0
while [ $i -lt "$N" ]; do
    if [ $((i % 2)) -eq 0 ]; then
        sched="  every: 1h"
    else
        z=$(echo $zones | cut -d' ' -f$((i / 2 % 4 + 1)))
        # 02:MM on the 1st of January (far from now unless run on New Year's night)
        sched=$(printf '  cron: "%d 2 1 1 *"\n  timezone: %s' $((i % 60)) "$z")
    fi
    cat >"$T/exps/e$i.yaml" <<EOF
version: 1
name: e$i
inventory:
  key_file: $T/key
  hosts:
    web1: { address: 127.0.0.1, port: 1 }
probes:
  - name: up
    tcp: { address: "127.0.0.1:1" }
    interval: 1s
steady_state: [up]
faults:
  - name: pause
    target: { hosts: [web1] }
    pause_process: { pidfile: /nonexistent }
    duration: 1s
recovery: { probes: [up], timeout: 5s }
schedule:
$sched
EOF
    i=$((i + 1))
done

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() {
    cat /proc/"$1"/task/*/status 2>/dev/null |
        awk '/^voluntary_ctxt_switches/ {v += $2} /^nonvoluntary_ctxt_switches/ {n += $2}
             END {print v, n}'
}
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
ms_of() { # command... -> elapsed ms
    s=$(date +%s%N)
    "$@" >/dev/null
    e=$(date +%s%N)
    echo $(((e - s) / 1000000))
}

start_serve() {
    "$BIN" serve --experiments "$T/exps" --db "sqlite:$T/history.db" --reports-dir "$T/reports" \
        --listen-http "127.0.0.1:$PORT" 2>"$T/serve.log" &
    PID=$!
    for _ in $(seq 1 600); do
        grep -q "serving" "$T/serve.log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "serve did not start:" >&2
    cat "$T/serve.log" >&2
    exit 1
}

echo "== serve with $N schedules"
t0=$(date +%s%N)
start_serve
t1=$(date +%s%N)
echo "start-up (load $N files, seed metrics, arm timers): $(((t1 - t0) / 1000000)) ms"
sleep 5
c0=$(cpu $PID)
set -- $(switches $PID)
v0=$1 n0=$2
sleep "$SECS"
c1=$(cpu $PID)
set -- $(switches $PID)
v1=$1 n1=$2
threads=$(ls /proc/$PID/task | wc -l)
rss=$(awk '/^VmRSS/ {print $2}' /proc/$PID/status)
echo "over $SECS s idle: CPU $(((c1 - c0) * 1000 / ticks)) ms" \
    "($(awk -v c=$((c1 - c0)) -v t="$ticks" -v s="$SECS" 'BEGIN {printf "%.3f", 100 * c / t / s}') %)"
echo "wakeups: $((v1 - v0)) voluntary + $((n1 - n0)) involuntary context switches" \
    "($(awk -v v=$((v1 - v0 + n1 - n0)) -v s="$SECS" 'BEGIN {printf "%.2f", v / s}')/s) over $threads threads"
echo "RSS: $rss KiB"
for _ in 1 2 3 4 5; do ms_of curl -sf "http://127.0.0.1:$PORT/"; done | median |
    sed "s/^/GET \/ ($N experiments), median of 5: /; s/$/ ms/"
kill $PID
wait $PID || true
PID=

echo "== history over $ROWS rows"
sqlite3 "$T/history.db" >/dev/null <<EOF
PRAGMA journal_mode=WAL;
WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < $ROWS)
INSERT INTO runs (experiment, file_hash, due_ms, started_ms, ended_ms, state, verdict,
                  recovery_ms, resolution_ms, report_folder, run_json)
SELECT 'e' || (i % $N), 'h', 1700000000000 + i * 60000, 1700000000000 + i * 60000,
       1700000000000 + i * 60000 + 30000, 'finished',
       CASE WHEN i % 10 = 0 THEN 'FAIL' ELSE 'PASS' END, 1000 + i % 500, 100,
       '$T/reports/e' || (i % $N) || '/' || i, printf('{"pad":"%.1000c"}', 'x')
FROM k;
EOF
echo "database: $(du -k "$T/history.db" | cut -f1) KiB, $(sqlite3 "$T/history.db" 'SELECT count(*) FROM runs') rows"
DB="sqlite:$T/history.db"
for args in "" "--limit 0" "--json --limit 0" "e7 --limit 0"; do
    # shellcheck disable=SC2086
    m=$(for _ in 1 2 3 4 5 6 7; do ms_of "$BIN" history --db "$DB" $args; done | median)
    echo "faultline history $args: median $m ms"
done
start_serve
for _ in 1 2 3 4 5 6 7; do ms_of curl -sf "http://127.0.0.1:$PORT/api/runs?limit=1000"; done |
    median | sed 's/^/GET \/api\/runs?limit=1000, median of 7: /; s/$/ ms/'
for _ in 1 2 3 4 5; do ms_of curl -sf "http://127.0.0.1:$PORT/"; done | median |
    sed "s/^/GET \/ over $ROWS rows, median of 5: /; s/$/ ms/"
kill $PID
wait $PID || true
PID=

echo "== next due time per schedule"
"$(dirname "$BIN")/bench/schedule_bench" "$N" 20
