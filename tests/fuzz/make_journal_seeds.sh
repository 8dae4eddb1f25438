#!/bin/sh
# Regenerates tests/fuzz/corpus/journal with journal_seeds.c, which writes
# every seed with the agent's own journal writer. Rerun it whenever the
# journal's on-disk format changes, from the source tree, after configuring:
#   tests/fuzz/make_journal_seeds.sh [BUILD_DIR]      (default: build)
# then check `ctest --test-dir build -R fuzz_journal` and commit the corpus.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$src/$build ;; esac
cmake --build "$build" --target fuzz_journal_seeds
mkdir -p "$src/tests/fuzz/corpus/journal"
"$build/tests/fuzz_journal_seeds" "$src/tests/fuzz/corpus/journal"
