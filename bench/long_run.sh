#!/bin/bash
# A long run: 200 http probes at 100 ms (2,000 attempts/s) for SECONDS, to
# show that the controller's memory stays flat and its reports stay quick.
# Issue 12's goal: a 1 h run (7.2 million attempts) with the controller's RSS
# under 100 MB and report writing under 5 s.
#
# usage (as root, after `make build`): bench/long_run.sh [BUILD_DIR] [SECONDS]
#   SECONDS: the fault's duration, which is most of the run (default 300)
#   N=200, SAMPLE_S=10: probes, and seconds between RSS samples
#   REPORT_DIR_ON: disk (default: /var/tmp, ext4 here) or tmpfs
#
# Same bed as bench/probe_rate.sh (bench/http_bed.sh): nginx, an agent and a
# dummy `sleep` on loopback; one pause_process of the dummy for SECONDS. The
# controller's VmRSS is sampled every SAMPLE_S seconds; the script prints the
# series, the slope (least squares, KB per minute; over all samples and over
# the second half), the sizes of attempts.jsonl and run.json, and the report
# writing time: from run.json's ended_at (the run's end, when the probes stop)
# to the process's exit, which writes run.json and junit.xml after
# attempts.jsonl is flushed and fsynced. The whole run holds
# /tmp/fl-serial.lock. Everything is removed at the end.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
seconds=${2:-300}
n=${N:-200}
sample=${SAMPLE_S:-10}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /var/tmp/fl-bench-long.XXXXXX)
fl=""
# shellcheck source=bench/http_bed.sh
source "$here/http_bed.sh"
cleanup() {
    [ -n "$fl" ] && kill "$fl" 2>/dev/null && wait "$fl" 2>/dev/null
    bed_stop
    umount "$work/reports" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
exec 9>/tmp/fl-serial.lock

mkdir "$work/reports"
if [ "${REPORT_DIR_ON:-disk}" = tmpfs ]; then
    mount -t tmpfs -o size=2g,mode=0700 fl-bench-long "$work/reports"
fi
rdir="$work/reports/r"
echo "machine: $(nproc) cores, kernel $(uname -r)"
echo "report dir on $(findmnt -n -o FSTYPE --target "$work/reports") ($rdir)"
bed_start_nginx
bed_start_agent
bed_start_victim
bed_experiment "$work/exp.yaml" "$n" "$seconds"
echo "$n http probes, interval 100ms, timeout 100ms, fault ${seconds}s; RSS every ${sample}s"

flock 9
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
ulimit -n "$(ulimit -Hn)"
"$build/faultline" run "$work/exp.yaml" --report-dir "$rdir" >"$work/out.txt" 2>&1 9>&- &
fl=$!
t0=$(date +%s.%N)
: >"$work/rss"
while kill -0 "$fl" 2>/dev/null; do
    now=$(date +%s.%N)
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$fl/status" 2>/dev/null || true)
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$fl/status" 2>/dev/null || true)
    cpu=$(bed_cpu "$fl" 2>/dev/null || true)
    [ -n "$rss" ] && echo "$now $rss $hwm $cpu" >>"$work/rss"
    # wake every 0.1 s to catch the exit, sample every $sample s
    for _ in $(seq $((sample * 10))); do
        kill -0 "$fl" 2>/dev/null || break
        sleep 0.1
    done
done
rc=0
wait "$fl" || rc=$?
t_exit=$(date +%s%3N)
fl=""
flock -u 9
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "exit $rc; $(grep -m1 '^experiment ' "$work/out.txt" || true)"

echo
echo "RSS series (s since start, VmRSS KB, VmHWM KB, CPU s):"
awk -v t0="$t0" '{printf "  %6.0f %8d %8d %8.2f\n", $1 - t0, $2, $3, $4}' "$work/rss"
slope() { # least squares KB/min over samples from the given fraction of the run on
    awk -v t0="$t0" -v from="$1" '{t[NR] = ($1 - t0) / 60; r[NR] = $2} END {
        s = int(NR * from) + 1; k = 0
        for (i = s; i <= NR; i++) { k++; sx += t[i]; sy += r[i]; sxx += t[i] * t[i]; sxy += t[i] * r[i] }
        if (k < 2) { print "n/a"; exit }
        printf "%.1f", (k * sxy - sx * sy) / (k * sxx - sx * sx)
    }' "$work/rss"
}
echo "RSS slope: $(slope 0) KB/min over all samples, $(slope 0.5) KB/min over the second half"

jq -r '"verdict \(.verdict): \(.reason)",
       "attempts \([.probes[].counts.attempts] | add), ok \([.probes[].counts.ok] | add), failed \([.probes[].counts.failed] | add), timeout \([.probes[].counts.timeout] | add), late \([.probes[].counts.late] | add), skipped \(.controller.skipped), late starts \(.controller.late_starts), longest stall \(.controller.longest_stall_ms) ms",
       "attempts_complete \(.attempts_complete), attempts_error \(.attempts_error)",
       "started_at \(.started_at), ended_at \(.ended_at)"' "$rdir/run.json"
ended=$(jq -r '.ended_at' "$rdir/run.json")
ended_ms=$(($(date -d "$ended" +%s%3N)))
started_ms=$(($(date -d "$(jq -r '.started_at' "$rdir/run.json")" +%s%3N)))
att=$(jq '[.probes[].counts.attempts] | add' "$rdir/run.json")
lines=$(wc -l <"$rdir/attempts.jsonl")
asz=$(stat -c %s "$rdir/attempts.jsonl")
jsz=$(stat -c %s "$rdir/run.json")
last=$(tail -1 "$work/rss")
awk -v a="$att" -v lines="$lines" -v asz="$asz" -v jsz="$jsz" -v s0="$started_ms" -v e="$ended_ms" \
    -v x="$t_exit" -v last="$last" -v sl="$(slope 0.5)" 'BEGIN {
    split(last, L, " ")
    secs = (e - s0) / 1000
    printf "observed %.0f s, %d attempts = %.0f/s; attempts.jsonl %d lines (%s), %.1f MiB = %.1f bytes/attempt; run.json %d bytes\n", secs, a, a / secs, lines, lines == a ? "= attempts" : "NOT = attempts", asz / 1048576, asz / a, jsz
    printf "report writing: ended_at to exit %.2f s\n", (x - e) / 1000
    printf "controller: last RSS %.1f MiB, peak (VmHWM) %.1f MiB, CPU %.1f s = %.1f us/attempt\n", L[2] / 1024, L[3] / 1024, L[4], L[4] / a * 1e6
    h = 7200000
    printf "1 h at this rate (7.2 M attempts): attempts.jsonl ~%.0f MiB; RSS at 1 h by the second-half slope ~%.1f MiB\n", asz / a * h / 1048576, (L[2] + (sl == "n/a" ? 0 : sl) * (60 - secs / 60)) / 1024
}'
