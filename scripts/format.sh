#!/bin/sh
# SPDX-License-Identifier: MIT
# The C sources as .clang-format lays them out. `make format` rewrites them (clang-format -i,
# then scripts/format_comments.py, which keeps a trailing comment's continuation lines under
# its first line, something clang-format leaves where they were); `make format-check` (part of
# make test, plain build) fails, naming the files, when any file is not laid out so.
# Usage: scripts/format.sh [--check]
set -eu
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' ! -path './build/*' ! -path './dist/*')
command -v clang-format >/dev/null || { echo "format: clang-format is not installed (scripts/deps.sh test)"; exit 1; }
if [ "${1:-}" = --check ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    bad=""
    for f in $files; do
        mkdir -p "$tmp/$(dirname "$f")"
        clang-format --style=file --assume-filename="$f" < "$f" > "$tmp/$f"
    done
    src=$(pwd)
    # shellcheck disable=SC2086
    (cd "$tmp" && python3 "$src/scripts/format_comments.py" $files > /dev/null)
    for f in $files; do
        cmp -s "$f" "$tmp/$f" || bad="$bad $f"
    done
    n=$(echo $files | wc -w)
    if [ -n "$bad" ]; then
        echo "format: not as .clang-format lays them out (make format fixes them):$bad"
        exit 1
    fi
    echo "format: $n C files as .clang-format lays them out"
else
    # shellcheck disable=SC2086
    clang-format -i --style=file $files
    # shellcheck disable=SC2086
    python3 scripts/format_comments.py $files
fi
