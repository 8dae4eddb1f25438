#!/bin/sh
# make demo: a game day in a box. Brings up the game-day bed (HAProxy in
# front of two nginx web servers, an agent on every host, each host a network
# namespace: tests/beds/gameday.sh), then from the client host:
#   1. checks the agents, and that a controller with another key is refused;
#   2. runs experiments/web-primary-crash.yaml (kill nginx on web1) and
#      experiments/web-network-cut.yaml (drop what reaches web1), and sets the
#      recovery time faultline measured beside the moment HAProxy's own log
#      says it marked web1 DOWN;
#   3. kills the controller with -9 in the middle of an experiment and shows
#      the agent's lease reverting the fault on its own;
#   4. brings up the PostgreSQL bed (tests/beds/postgres.sh: a primary and an
#      asynchronous standby with repmgrd, each a namespace with its agent)
#      and runs experiments/db-failover-lag.yaml (cut the standby's WAL
#      stream, kill the primary): the writes lost are counted, and set beside
#      the old primary's own data directory, started alone afterwards;
# and tears it all down, checking that nothing is left.
# usage: scripts/demo.sh BUILD_DIR
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-build}" && pwd)
bed="$here/tests/beds/gameday.sh"
pgbed="$here/tests/beds/postgres.sh"
work=$(mktemp -d /tmp/faultline-demo.XXXXXX)
chmod 755 "$work" # the PostgreSQL bed's server runs as postgres, under it
# the reports outlive the demo (the bed and its work folder do not):
# DEMO_REPORTS, default /var/tmp/faultline-demo-reports/TIME
keep=${DEMO_REPORTS:-/var/tmp/faultline-demo-reports/$(date +%Y%m%dT%H%M%S)}
state="$work/bed"
pgstate="$work/pg"
summary="$work/summary"
: >"$summary"

cleanup() {
    rc=$?
    trap - EXIT INT TERM
    printf '\n== tearing the beds down\n'
    # both, whatever the first says: a failed gameday teardown must not
    # leave the PostgreSQL bed's namespaces and servers behind
    down=0
    "$bed" down "$state" || down=1
    "$pgbed" down "$pgstate" || down=1
    if [ "$down" -eq 0 ]; then
        echo "nothing left behind: no namespace, process, mount, nft table or file"
    else
        rc=1
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n== %s\n' "$*"; }
on_client() { "$bed" exec "$state" client "$@"; }
ms_of() { date -d "$1" +%s%3N; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.2f s", ms / 1000 }'; }

# The first "Server $1 is $2" HAProxy logged after epoch-ms $3, as ms after it.
haproxy_after() {
    after=$3
    while read -r ts rest; do
        case "$rest" in
        *"Server $1 is $2"*)
            t=$(ms_of "$ts")
            if [ "$t" -ge "$after" ]; then
                echo $((t - after))
                return 0
            fi
            ;;
        esac
    done <"$state/lb/haproxy.log"
    return 1
}

# Waits until HAProxy's last word on web/web1 is UP (or it never said DOWN).
web1_up() {
    for _ in $(seq 150); do
        last=$(grep -o 'Server web/web1 is [A-Z]*' "$state/lb/haproxy.log" | tail -1)
        case "$last" in *DOWN) sleep 0.1 ;; *) return 0 ;; esac
    done
    echo "demo: web1 did not come back UP in HAProxy" >&2
    return 1
}

# Runs an experiment from the client host with its live progress, then sets
# its measurement beside HAProxy's log.
experiment() {
    name=$1
    step "faultline run experiments/$name.yaml (from the client host)"
    web1_up
    out="$work/$name.out"
    # the exit code survives the pipe to tee through a file (sh has no pipefail)
    { rc=0; on_client "$build/faultline" run "$here/experiments/$name.yaml" \
        --inventory "$state/hosts.yaml" --report-dir "$work/reports/$name" || rc=$?
      echo "$rc" >"$work/rc"; } | tee "$out"
    rc=$(cat "$work/rc")
    injected=$(sed -n 's/^  injected .*(\(.*\))$/\1/p' "$out")
    # the verdict and its one reason sentence ("PASS: recovered in 0.57s (±0.11s), objective 5s")
    verdict=$(sed -n 's/^experiment [^ ]*: \(.*\)$/\1/p' "$out" | head -1)
    said="$verdict: $(grep -m1 -A1 '^experiment ' "$out" | tail -1 | sed 's/^  //')"
    if [ -n "$injected" ] && down=$(haproxy_after web/web1 DOWN "$(ms_of "$injected")"); then
        truth="HAProxy's log says it marked web1 DOWN $(secs "$down") after injection"
    else
        truth="HAProxy's log has no DOWN for web1 after injection"
    fi
    echo
    echo "ground truth: $truth"
    echo "reports: $(ls "$work/reports/$name" | tr '\n' ' ')(run.json's measurements:)"
    sed -n '/^  "measurements": {/,/^  }/p' "$work/reports/$name/run.json"
    printf '%-20s %s\n%-20s (%s)\n' "$name:" "$said" "" "$truth" >>"$summary"
    mkdir -p "$keep" && cp -r "$work/reports/$name" "$keep/$name"
    printf '%-20s report: %s\n' "" "$keep/$name/report.html" >>"$summary"
    [ "$rc" -eq 0 ] || { echo "demo: $name did not pass (exit $rc)" >&2; exit 1; }
}

step "bringing up the game-day bed: lb, web1, web2, client (network namespaces)"
"$bed" up "$state" "$build"
sed -n '/^backend web$/,/^$/p' "$state/lb/haproxy.cfg"

step "faultline agents --inventory hosts.yaml: every host's agent, authenticated"
on_client "$build/faultline" agents --inventory "$state/hosts.yaml"

step "the same with a key of its own: refused"
"$build/faultline" keygen "$work/impostor.key" >/dev/null
if on_client "$build/faultline" agents --key "$work/impostor.key" 10.77.0.2; then
    echo "demo: an impostor was let in" >&2
    exit 1
fi

experiment web-primary-crash
experiment web-network-cut

step "kill -9 the controller in the middle of web-network-cut: the lease reverts"
web1_up
log="$work/crash.log"
"$bed" exec "$state" client "$build/faultline" run "$here/experiments/web-network-cut.yaml" \
    --inventory "$state/hosts.yaml" >"$log" 2>&1 &
ctl=$!
for _ in $(seq 100); do
    grep -q '] injected' "$log" && break
    sleep 0.1
done
grep '] injected' "$log"
on_client "$build/faultline" agents --inventory "$state/hosts.yaml"
kill -9 "$ctl"
killed=$(date +%s%3N)
wait "$ctl" 2>/dev/null || true
echo "controller killed with -9; web1's fault now has no controller"
reverted=""
for _ in $(seq 100); do
    if ! on_client "$build/faultline" agents --inventory "$state/hosts.yaml" | grep -q ' active '; then
        reverted=$(($(date +%s%3N) - killed))
        break
    fi
    sleep 0.1
done
[ -n "$reverted" ] || { echo "demo: the fault outlived its lease" >&2; exit 1; }
on_client "$build/faultline" agents --inventory "$state/hosts.yaml"
line="the agent reverted the fault $(secs "$reverted") after its controller died (lease 2 s)"
echo "$line"
printf '%-20s %s\n' "controller kill -9:" "$line" >>"$summary"

step "the PostgreSQL bed: db1 primary, db2 asynchronous standby, repmgrd on both"
"$pgbed" up "$pgstate" "$build" async
pgsql() { "$pgbed" sql "$pgstate" "$@"; }

step "faultline run experiments/db-failover-lag.yaml (from the client host)"
out="$work/db-failover-lag.out"
{ rc=0; "$pgbed" exec "$pgstate" client "$build/faultline" run \
    "$here/experiments/db-failover-lag.yaml" --inventory "$pgstate/hosts.yaml" \
    --report-dir "$work/reports/db-failover-lag" || rc=$?
  echo "$rc" >"$work/rc"; } | tee "$out"
rc=$(cat "$work/rc")
# exit 1 is the verdict FAIL, which this act expects (rpo: 0s on an
# asynchronous standby); anything else is the demo failing
[ "$rc" -eq 1 ] || { echo "demo: db-failover-lag did not FAIL as expected (exit $rc)" >&2; exit 1; }
run_id=$(sed -n 's/^  "run_id": "\(.*\)",$/\1/p' "$work/reports/db-failover-lag/run.json")
q="SELECT seq FROM faultline_writes WHERE run_id = '$run_id' ORDER BY seq"
pgsql db2 "$q" | sort >"$work/new.seqs"
"$pgbed" isolate "$pgstate" db1
pgsql db1-isolated "$q" | sort >"$work/old.seqs"
only_old=$(comm -23 "$work/old.seqs" "$work/new.seqs" | sort -n)
n_old=$(printf '%s\n' "$only_old" | grep -c . || true)
span=$(printf '%s\n' "$only_old" | sed -n '1p;$p' | paste -sd- -)
truth="the old primary's data directory, started alone, holds $n_old rows the new primary lacks (seq $span)"
echo
echo "ground truth: $truth"
echo "(faultline counts an acknowledged write lost; a row committed by the dying primary"
echo " whose acknowledgement never reached the client is not one: at most the write in flight)"
verdict=$(sed -n 's/^experiment [^ ]*: \(.*\)$/\1/p' "$out" | head -1)
said="$verdict: $(grep -m1 -A1 '^experiment ' "$out" | tail -1 | sed 's/^  //')"
grep -E '^objectives:|^    data:' "$out"
mkdir -p "$keep" && cp -r "$work/reports/db-failover-lag" "$keep/db-failover-lag"
{
    printf '%-20s %s\n' "db-failover-lag:" "$said"
    grep '^    data:' "$out" | sed 's/^    data: /                     data: /'
    printf '%-20s (%s)\n' "" "$truth"
    printf '%-20s report: %s\n' "" "$keep/db-failover-lag/report.html"
} >>"$summary"

step "what this showed"
cat "$summary"
echo "open a report in a browser (one file, nothing fetched): $keep/*/report.html"
