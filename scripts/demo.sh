#!/bin/sh
# make demo: a key, an agent on loopback, the controller checking it, an
# impostor with another key refused, and a fault that outlives its agent's
# kill -9 by a few milliseconds only: the guardian reverts it. Leaves nothing
# behind.
# usage: scripts/demo.sh BUILD_DIR
set -eu
build=$(cd "${1:-build}" && pwd)
work=$(mktemp -d /tmp/faultline-demo.XXXXXX)
agent_pid=""
target=""
cleanup() {
    [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
    [ -n "$target" ] && kill -CONT "$target" 2>/dev/null && kill "$target" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

step() { printf '\n== %s\n' "$*"; }

step "faultline keygen: a pre-shared key for the controller and its agents"
"$build/faultline" keygen "$work/faultline.key"
ls -l "$work/faultline.key"

runs=0
start_agent() {
    runs=$((runs + 1))
    log="$work/agent-$runs.log"
    "$build/faultline-agent" --key "$work/faultline.key" --listen 127.0.0.1:0 \
        --state-dir "$work/state" >"$log" 2>&1 &
    agent_pid=$!
    port=""
    for _ in $(seq 100); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
        [ -n "$port" ] && kill -0 "$agent_pid" 2>/dev/null && break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$log"; echo "demo: the agent did not start" >&2; exit 1; }
    echo "agent pid $agent_pid listening on 127.0.0.1:$port"
}
state() { awk '{print $3}' "/proc/$1/stat"; }

step "faultline-agent on 127.0.0.1 (any free port)"
start_agent

step "faultline agents: authenticate and ask for its status"
"$build/faultline" agents --key "$work/faultline.key" "127.0.0.1:$port"

step "the same with a different key: refused"
"$build/faultline" keygen "$work/impostor.key" >/dev/null
if "$build/faultline" agents --key "$work/impostor.key" "127.0.0.1:$port"; then
    echo "demo: an agent accepted a wrong key" >&2
    exit 1
fi

step "a fault by hand: pause a process (here a sleep standing in for your service)"
sleep 600 &
target=$!
"$build/faultline" inject --key "$work/faultline.key" "127.0.0.1:$port" pause_process \
    "pid=$target" --duration 5m
echo "process $target is now in state $(state "$target") (T = stopped)"
"$build/faultline" agents --key "$work/faultline.key" "127.0.0.1:$port"

step "kill -9 the agent: its guardian reverts the fault"
kill -9 "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
agent_pid=""
for _ in $(seq 50); do
    [ "$(state "$target")" = S ] && break
    sleep 0.02
done
echo "process $target is in state $(state "$target") again (S = running)"
[ "$(state "$target")" = S ] || { echo "demo: the fault outlived its agent" >&2; exit 1; }

step "a new agent starts on the same state directory: nothing is left to revert"
start_agent
"$build/faultline" agents --key "$work/faultline.key" "127.0.0.1:$port"

step "stopping the agent (SIGTERM); the logs of both agents:"
kill "$agent_pid"
wait "$agent_pid"
agent_pid=""
cat "$work"/agent-*.log
printf '\ndemo: done. The agent authenticated the controller, refused the impostor,\n'
printf 'and its guardian reverted a fault when the agent was killed with -9.\n'
