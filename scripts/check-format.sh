#!/bin/sh
# Fails when a C file is not as clang-format (the repo's .clang-format) would
# write it, naming each file and the command that fixes it.
# usage: scripts/check-format.sh [SOURCE_DIR]
set -eu
cd "${1:-.}"
if ! command -v clang-format >/dev/null 2>&1; then
    echo "clang-format not found: install the Debian package clang-format (make deps does)"
    exit 1
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    files=$(git ls-files --cached --others --exclude-standard -- '*.c' '*.h')
else
    files=$(find . -path ./build -prune -o -path './build-*' -prune -o \
        \( -name '*.c' -o -name '*.h' \) -type f -print | sed 's|^\./||' | sort)
fi
off=""
for f in $files; do
    [ -f "$f" ] || continue # deleted in the work tree, not yet committed
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        off="$off $f"
    fi
done
if [ -n "$off" ]; then
    echo "not in the repo's style (.clang-format, see CONTRIBUTING.md):"
    for f in $off; do
        echo "  $f    fix: clang-format -i $f"
    done
    echo "first differences:"
    for f in $off; do
        clang-format --dry-run --Werror "$f" 2>&1 | head -n 6 || true
    done
    exit 1
fi
echo "format: every tracked .c and .h file is as clang-format writes it"
