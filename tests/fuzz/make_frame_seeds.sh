#!/bin/sh
# Regenerates the protocol-dependent seeds of tests/fuzz/corpus/frame with
# frame_seeds.c. Run from the source tree after a build:
#   tests/fuzz/make_frame_seeds.sh [BUILD_DIR]      (default: build)
# then check `ctest -R fuzz_frame` and commit the corpus.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$src/$build ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$src" -I"$build/proto" \
    "$src/tests/fuzz/frame_seeds.c" "$build/libfl_common.a" "$build/libfl_proto.a" \
    $(pkg-config --libs libprotobuf-c libcrypto) -o "$tmp/frame_seeds"
"$tmp/frame_seeds" "$src/tests/fuzz/corpus/frame"
