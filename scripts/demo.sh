#!/bin/sh
# make demo: a key, an agent on loopback, the controller checking it -- and
# an impostor with another key being refused. Leaves nothing behind.
# usage: scripts/demo.sh BUILD_DIR
set -eu
build=$(cd "${1:-build}" && pwd)
work=$(mktemp -d /tmp/faultline-demo.XXXXXX)
agent_pid=""
cleanup() {
    [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

step() { printf '\n== %s\n' "$*"; }

step "faultline keygen: a pre-shared key for the controller and its agents"
"$build/faultline" keygen "$work/faultline.key"
ls -l "$work/faultline.key"

step "faultline-agent on 127.0.0.1 (any free port)"
"$build/faultline-agent" --key "$work/faultline.key" --listen 127.0.0.1:0 \
    >"$work/agent.log" 2>&1 &
agent_pid=$!
port=""
for _ in $(seq 50); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/agent.log")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { cat "$work/agent.log"; echo "demo: the agent did not start" >&2; exit 1; }
echo "agent pid $agent_pid listening on 127.0.0.1:$port"

step "faultline agents: authenticate and ask for its status"
"$build/faultline" agents --key "$work/faultline.key" "127.0.0.1:$port"

step "the same with a different key: refused"
"$build/faultline" keygen "$work/impostor.key" >/dev/null
if "$build/faultline" agents --key "$work/impostor.key" "127.0.0.1:$port"; then
    echo "demo: an agent accepted a wrong key" >&2
    exit 1
fi

step "stopping the agent (SIGTERM); its log:"
kill "$agent_pid"
wait "$agent_pid"
agent_pid=""
cat "$work/agent.log"
printf '\ndemo: done; the agent authenticated the controller and refused the impostor.\n'
