#!/bin/sh
# Fails when product code calls a function we do not use: unbounded copies,
# unchecked conversions, or a shell between us and execve.
# usage: scripts/check-banned.sh [SOURCE_DIR]
set -eu
cd "${1:-.}"
pattern='(^|[^_a-zA-Z0-9])(sprintf|vsprintf|strcpy|strcat|strncpy|strncat|gets|atoi|atol|atoll|atof|system|popen|strtok|tmpnam|mktemp)[[:space:]]*\('
hits=$(grep -nE "$pattern" agent/*.c agent/*/*.c controller/*.c controller/*/*.c common/*.c common/*.h 2>/dev/null || true)
if [ -n "$hits" ]; then
    echo "banned functions in product code (see CONTRIBUTING.md):"
    echo "$hits"
    exit 1
fi
echo "banned functions: none in agent/, controller/, common/"
