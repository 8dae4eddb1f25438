#!/bin/sh
# Makes docs/report.png, the picture of report.html in the README, from a
# real run: brings up the game-day bed (tests/beds/gameday.sh), runs
# experiments/web-primary-crash.yaml from its client host with --report-dir,
# photographs the report.html it wrote in headless Chromium (inside an empty
# network namespace: the page needs nothing from outside), and tears the bed
# down.
# usage: scripts/report-image.sh BUILD_DIR [OUT.png]   (as root)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-build}" && pwd)
out=${2:-$here/docs/report.png}
bed="$here/tests/beds/gameday.sh"
work=$(mktemp -d /tmp/faultline-report-image.XXXXXX)
browser=/usr/bin/chromium-headless-shell
[ -x "$browser" ] || browser=/usr/bin/chromium

cleanup() {
    rc=$?
    trap - EXIT INT TERM
    "$bed" down "$work/bed" >/dev/null || rc=1
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$bed" up "$work/bed" "$build" $$ >/dev/null
rc=0
"$bed" exec "$work/bed" client "$build/faultline" run "$here/experiments/web-primary-crash.yaml" \
    --inventory "$work/bed/hosts.yaml" --report-dir "$work/report" >/dev/null || rc=$?
echo "the run exited $rc; its report: $work/report/report.html"
unshare --net "$browser" --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$work/profile" --window-size=1040,1000 \
    --screenshot="$out" "file://$work/report/report.html" 2>/dev/null
echo "wrote $out"
