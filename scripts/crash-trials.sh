#!/bin/sh
# Crash trials: N random kill -9 of the agent (or agent and guardian) at
# random instants of inject and revert, every fault kind, some with the
# state file system nearly full; 0 leftovers expected (tests/trials/).
# usage (as root, after `make build`): scripts/crash-trials.sh [N] [SEED] [BUILD_DIR]
set -eu
n=${1:-1000}
seed=${2:-$(date +%s)}
build=${3:-build}
exec "$build/tests/crash_trials" "$build/faultline-agent" "$n" "$seed"
