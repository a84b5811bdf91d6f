#!/bin/sh
# Fails when a banned libc function (docs/internals/README.md) appears in src/ or tests/ C code.
set -eu
cd "$(dirname "$0")/.."
banned='strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|gets|alloca'
if grep -nE "(^|[^_a-zA-Z0-9.>])($banned)[[:space:]]*\(" src/*/*.c src/*/*.h tests/unit/*.c \
     tests/fuzz/*.c 2>/dev/null | grep -vE '^\S+:[0-9]+:\s*(/\*|\*)'; then
    echo "ban-check: banned function used (see docs/internals/README.md)" >&2
    exit 1
fi
echo "ban-check: clean"
