#!/bin/bash
# How many http probes one controller sustains, and what each costs, beside
# blackbox_exporter driven by Prometheus at the same total rate.
#
# usage (as root, after `make build`): bench/probe_rate.sh [BUILD_DIR] [N...]
#   N: probe counts (default 100 1000 5000)
#   THREADS      faultline's --probe-threads values to run each N with (default "1 2")
#   FAULT_S      the fault's duration, seconds (default 20)
#   FAULTLINE=0  skip the faultline part; BLACKBOX=0 skip the blackbox_exporter part; BB_N: its counts (default: the N)
#   BB_SECONDS   blackbox measurement window, seconds (default 30)
#   BB_WARM      seconds Prometheus scrapes before the window (default 10)
#
# One nginx (private config, port and prefix; `return 200`), one agent and a
# dummy `sleep` on loopback (bench/http_bed.sh). For each N: an experiment of N
# http probes (interval 100ms, timeout 100ms, rise 1, fall 1, all in
# steady_state) and one pause_process of the dummy for FAULT_S seconds, run by
# `faultline run --report-dir` under /usr/bin/time (the controller's CPU and
# peak RSS from wait4). nginx never fails, so every failed or timeout attempt
# is a false failure. Then, per N, blackbox_exporter (module http_2xx, timeout
# 100ms) scraped by Prometheus at scrape_interval 100ms through N targets on
# the same nginx; CPU of each from /proc/PID/stat over a window of BB_SECONDS.
# Each measurement holds /tmp/fl-serial.lock (the tests' serial lock), so no
# serial test runs beside it. Everything is removed at the end.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
shift || true
ns=("$@")
[ ${#ns[@]} -gt 0 ] || ns=(100 1000 5000)
read -r -a bb_ns <<<"${BB_N:-${ns[*]}}"
read -r -a threads <<<"${THREADS:-1 2}"
fault_s=${FAULT_S:-20}
bb_seconds=${BB_SECONDS:-30}
bb_warm=${BB_WARM:-10}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /var/tmp/fl-bench-rate.XXXXXX)
bb=""
prom=""
# shellcheck source=bench/http_bed.sh
source "$here/http_bed.sh"
cleanup() {
    for pid in $prom $bb; do kill "$pid" 2>/dev/null || true; done
    for pid in $prom $bb; do wait "$pid" 2>/dev/null || true; done
    bed_stop
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
exec 9>/tmp/fl-serial.lock

# p50 p90 p99 max of the numbers on stdin (nearest rank)
pctl() {
    sort -n | awk '{v[NR] = $1} END {
        if (NR == 0) { print "- - - -"; exit }
        split("50 90 99", q, " ")
        for (i = 1; i <= 3; i++) { r = int((q[i] * NR + 99) / 100); printf "%s ", v[r < 1 ? 1 : r] }
        print v[NR]
    }'
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), kernel $(uname -r)"
echo "report dirs on $(findmnt -n -o FSTYPE --target "$work") ($work)"
bed_start_nginx
bed_start_agent
bed_start_victim
echo "nginx 127.0.0.1:$NGINX_PORT (2 workers), agent 127.0.0.1:$AGENT_PORT, dummy pid $BED_VICTIM"
echo
[ "${FAULTLINE:-1}" = 0 ] && ns=()
echo "== faultline: N http probes, 100ms interval, 100ms timeout, fault ${fault_s}s, --probe-threads ${threads[*]}"
summary=()
for n0 in ${ns[@]+"${ns[@]}"}; do
for k in "${threads[@]}"; do
    n="$n0-t$k"
    exp="$work/exp-$n.yaml"
    rdir="$work/report-$n"
    bed_experiment "$exp" "$n0" "$fault_s"
    flock 9
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    r0=$(bed_nginx_requests)
    rc=0
    (
        ulimit -n "$(ulimit -Hn)"
        exec /usr/bin/time -f '%U %S %M %e' -o "$work/time-$n" \
            "$build/faultline" run "$exp" --probe-threads "$k" --report-dir "$rdir" \
            >"$work/out-$n.txt" 2>&1 9>&-
    ) || rc=$?
    r1=$(bed_nginx_requests)
    flock -u 9
    if [ ! -f "$rdir/run.json" ]; then
        echo "N=$n: no run.json (exit $rc); last lines of its output:"
        tail -5 "$work/out-$n.txt"
        continue
    fi
    # (time writes "Command exited with non-zero status N" first when it did)
    read -r ut st maxrss wall < <(tail -1 "$work/time-$n")
    jq -r '[.verdict,
            ([.probes[].counts.attempts] | add), ([.probes[].counts.ok] | add),
            ([.probes[].counts.failed] | add), ([.probes[].counts.timeout] | add),
            ([.probes[].counts.late] | add),
            .controller.skipped, .controller.late_starts, .controller.longest_stall_ms,
            .controller.max_start_late_ms,
            ((.ended_at | sub("\\.[0-9]+Z$"; "Z") | fromdate) - (.started_at | sub("\\.[0-9]+Z$"; "Z") | fromdate)
             + ((.ended_at | capture("\\.(?<ms>[0-9]+)Z$").ms | tonumber) - (.started_at | capture("\\.(?<ms>[0-9]+)Z$").ms | tonumber)) / 1000),
            (.attempts_complete | tostring)] | @tsv' "$rdir/run.json" >"$work/fig-$n"
    read -r verdict att ok failed tmo late skipped lstarts stall maxlate secs complete <"$work/fig-$n"
    lines=$(wc -l <"$rdir/attempts.jsonl")
    read -r l50 l90 l99 lmax < <(grep -o '"l":[0-9]*' "$rdir/attempts.jsonl" | cut -d: -f2 | pctl)
    cpu=$(awk -v u="$ut" -v s="$st" 'BEGIN {printf "%.2f", u + s}')
    echo "N=$n  load before: $load  exit $rc  verdict $verdict"
    grep -m1 -E '^  (controller overloaded|aborted|reason)' "$work/out-$n.txt" || true
    jq -r 'select(.abort_reason != null) | "  abort_reason: " + .abort_reason' "$rdir/run.json"
    awk -v a="$att" -v s="$secs" -v c="$cpu" -v u="$ut" -v st="$st" -v m="$maxrss" -v w="$wall" \
        -v f="$((failed + tmo))" -v ok="$ok" -v l="$late" -v sk="$skipped" -v ls="$lstarts" \
        -v stall="$stall" -v ml="$maxlate" -v lines="$lines" -v req="$((r1 - r0 - 1))" \
        -v complete="$complete" 'BEGIN {
        printf "  observed %.1f s (wall %.1f s), attempts %d = %.0f/s; ok %d, false failures %d, late %d, skipped %d, late starts %d\n", s, w, a, a / s, ok, f, l, sk, ls
        printf "  longest loop stall %d ms, latest start %d ms; nginx served %d requests; attempts.jsonl %d lines (complete %s)\n", stall, ml, req, lines, complete
        printf "  controller CPU %.2f s (user %.2f, sys %.2f) = %.1f us/attempt, %.0f%% of one core; peak RSS %.1f MiB\n", c, u, st, c / a * 1e6, c / s * 100, m / 1024
    }'
    echo "  attempt latency (attempts.jsonl l, ms) p50 $l50  p90 $l90  p99 $l99  max $lmax"
    summary+=("$(awk -v n="$n0" -v k="$k" -v v="$verdict" -v a="$att" -v s="$secs" -v c="$cpu" \
        -v f="$((failed + tmo))" -v l="$late" -v ls="$lstarts" -v sk="$skipped" \
        -v p="$l50/$l90/$l99" 'BEGIN {
        printf "| %5d | %d | %-15s | %6.0f | %d | %d | %d | %5.1f | %s |", n, k, v, a / s, f,
            l, ls + sk, c / a * 1e6, p }')")
done
done
if [ ${#summary[@]} -gt 0 ]; then
    echo
    echo "| N | threads | verdict | attempts/s | false failures | late | late starts + skipped | CPU us/attempt | latency p50/p90/p99 ms |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${summary[@]}"
fi

[ "${BLACKBOX:-1}" = 0 ] && exit 0
echo
echo "== blackbox_exporter $(prometheus-blackbox-exporter --version 2>&1 | awk 'NR == 1 {print $3}') driven by Prometheus $(prometheus --version 2>&1 | awk 'NR == 1 {print $3}'), scrape_interval 100ms, scrape_timeout 100ms"
bb_port=$(bed_free_port)
cat >"$work/blackbox.yml" <<EOF
modules:
  http_2xx:
    prober: http
    timeout: 100ms
    http:
      preferred_ip_protocol: ip4
      valid_status_codes: [200]
EOF
prometheus-blackbox-exporter --config.file="$work/blackbox.yml" \
    --web.listen-address="127.0.0.1:$bb_port" >"$work/blackbox.log" 2>&1 9>&- &
bb=$!
for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$bb_port/metrics" 2>/dev/null && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$bb_port/probe?module=http_2xx&target=http://127.0.0.1:$NGINX_PORT/" |
    grep -q '^probe_success 1' || { echo "blackbox probe of nginx failed"; exit 1; }

promq() { # promq QUERY TIME: the value of a scalar-like query
    curl -fsS --get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" \
        --data-urlencode "time=$2" | jq -r '.data.result[0].value[1] // "0"'
}
for n in "${bb_ns[@]}"; do
    prom_port=$(bed_free_port)
    {
        echo "global: { scrape_interval: 100ms, scrape_timeout: 100ms, evaluation_interval: 1m }"
        echo "scrape_configs:"
        echo "  - job_name: bb"
        echo "    metrics_path: /probe"
        echo "    params: { module: [http_2xx] }"
        echo "    static_configs:"
        echo "      - targets:"
        awk -v n="$n" -v port="$NGINX_PORT" 'BEGIN {
            for (i = 0; i < n; i++) printf "        - \"http://127.0.0.1:%s/?i=%d\"\n", port, i }'
        echo "    relabel_configs:"
        echo "      - { source_labels: [__address__], target_label: __param_target }"
        echo "      - { source_labels: [__param_target], target_label: instance }"
        echo "      - { target_label: __address__, replacement: \"127.0.0.1:$bb_port\" }"
    } >"$work/prom-$n.yml"
    (
        ulimit -n "$(ulimit -Hn)"
        exec prometheus --config.file="$work/prom-$n.yml" --storage.tsdb.path="$work/prom-$n" \
            --web.listen-address="127.0.0.1:$prom_port" >"$work/prom-$n.log" 2>&1 9>&-
    ) &
    prom=$!
    up=""
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$prom_port/-/ready" 2>/dev/null && up=1 && break
        kill -0 "$prom" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$up" ]; then
        echo "N=$n: Prometheus did not start; its log:"
        tail -5 "$work/prom-$n.log"
        prom=""
        continue
    fi
    sleep "$bb_warm"
    flock 9
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    bc0=$(bed_cpu "$bb")
    pc0=$(bed_cpu "$prom")
    r0=$(bed_nginx_requests)
    t0=$(date +%s.%N)
    sleep "$bb_seconds"
    bc1=$(bed_cpu "$bb")
    pc1=$(bed_cpu "$prom")
    r1=$(bed_nginx_requests)
    t1=$(date +%s.%N)
    flock -u 9
    brss=$(awk '/^VmRSS/ {print $2}' "/proc/$bb/status")
    prss=$(awk '/^VmRSS/ {print $2}' "/proc/$prom/status")
    w=$bb_seconds
    at=$(printf '%.3f' "$t1")
    scrapes=$(promq "sum(count_over_time(up{job=\"bb\"}[${w}s]))" "$at")
    scr_ok=$(promq "sum(sum_over_time(up{job=\"bb\"}[${w}s]))" "$at")
    probes=$(promq "sum(count_over_time(probe_success{job=\"bb\"}[${w}s]))" "$at")
    pr_ok=$(promq "sum(sum_over_time(probe_success{job=\"bb\"}[${w}s]))" "$at")
    # Prometheus does not scrape itself here: its own summary of the actual
    # intervals between scrapes, from its /metrics
    ival() {
        curl -fsS "http://127.0.0.1:$prom_port/metrics" |
            awk -v q="$1" 'index($0, "prometheus_target_interval_length_seconds{interval=\"100ms\",quantile=\"" q "\"}") == 1 {print $2}'
    }
    i50=$(ival 0.5)
    i99=$(ival 0.99)
    kill "$prom"
    wait "$prom" 2>/dev/null || true
    prom=""
    rm -rf "$work/prom-$n"
    echo "N=$n targets (asked: $((n * 10)) probes/s)  load before: $load"
    awk -v t0="$t0" -v t1="$t1" -v req="$((r1 - r0 - 1))" -v b0="$bc0" -v b1="$bc1" -v p0="$pc0" \
        -v p1="$pc1" -v sc="$scrapes" -v so="$scr_ok" -v pr="$probes" -v po="$pr_ok" \
        -v br="$brss" -v prr="$prss" -v i50="$i50" -v i99="$i99" 'BEGIN {
        s = t1 - t0
        printf "  window %.1f s: nginx served %d requests = %.0f probes/s; scrapes %d (%d up), probe_success samples %d (%d ok)\n", s, req, req / s, sc, so, pr, po
        printf "  false failures (scrape failed or probe_success 0): %d\n", (sc - so) + (pr - po)
        printf "  blackbox CPU %.2f s = %.0f%% of a core, %.1f us/probe; RSS %.1f MiB\n", b1 - b0, (b1 - b0) / s * 100, req ? (b1 - b0) / req * 1e6 : 0, br / 1024
        printf "  Prometheus CPU %.2f s = %.0f%% of a core, %.1f us/probe; RSS %.1f MiB; scrape interval p50 %.3f s, p99 %.3f s\n", p1 - p0, (p1 - p0) / s * 100, req ? (p1 - p0) / req * 1e6 : 0, prr / 1024, i50, i99
    }'
done
