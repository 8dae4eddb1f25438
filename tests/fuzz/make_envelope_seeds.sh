#!/bin/sh
# Regenerates tests/fuzz/corpus/envelope with envelope_seeds.c (Envelopes
# packed by this build's protobuf code). Rerun after a change of
# proto/faultline.proto, from the source tree, after configuring:
#   tests/fuzz/make_envelope_seeds.sh [BUILD_DIR]      (default: build)
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$src/$build ;; esac
cmake --build "$build" --target fuzz_envelope_seeds
mkdir -p "$src/tests/fuzz/corpus/envelope"
"$build/tests/fuzz_envelope_seeds" "$src/tests/fuzz/corpus/envelope"
