#!/bin/sh
# Runs every libFuzzer target of a fuzz build in turn, FUZZ_SECONDS each
# (default 60), niced, then prints per target: executions, edges covered
# (libFuzzer's cov:, from -print_final_stats=1 and the last status line) and
# crashes. `make fuzz` runs it after building the targets; by hand:
#   tests/fuzz/run.sh [BUILD_DIR] [TARGET...]      (default: build-fuzz, all)
# Each target's new inputs go to BUILD_DIR/corpus-NAME (the committed seeds in
# tests/fuzz/corpus/NAME are read, never written); a crash leaves its input
# as BUILD_DIR/crash-NAME-* and the log as BUILD_DIR/fuzz-NAME.log. Exits 1
# when any target crashed.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build-fuzz}
[ $# -gt 0 ] && shift
case $build in /*) ;; *) build=$src/$build ;; esac
seconds=${FUZZ_SECONDS:-60}
targets=${*:-frame journal yamldoc experiment inventory agentconfig key units faultspec envelope}
summary=$build/fuzz-summary.txt
printf '%-12s %12s %8s %9s %8s  %s\n' target executions edges features crashes log >"$summary"
failed=0
for t in $targets; do
    bin=$build/tests/fuzz_$t
    if [ ! -x "$bin" ]; then
        echo "run.sh: $bin missing: build with -DFL_FUZZ=ON (make fuzz)" >&2
        exit 2
    fi
    mkdir -p "$build/corpus-$t"
    log=$build/fuzz-$t.log
    echo "== fuzz_$t: ${seconds}s"
    # -max_len: inputs are config files, specs and frames; 16 KiB is ample (the largest seed is under 8 KiB)
    nice -n 10 "$bin" -max_total_time="$seconds" -max_len=16384 -print_final_stats=1 \
        -artifact_prefix="$build/crash-$t-" -timeout=25 -rss_limit_mb=4096 \
        "$build/corpus-$t" "$src/tests/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    crashes=0
    if [ $rc -ne 0 ]; then
        crashes=1
        failed=1
        grep -m3 -E 'ERROR: |runtime error|SUMMARY' "$log" >&2
    fi
    printf '%-12s %12s %8s %9s %8s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$crashes" \
        "$log" >>"$summary"
    tail -1 "$summary"
done
echo
cat "$summary"
exit $failed
