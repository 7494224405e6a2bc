#!/bin/sh
# SPDX-License-Identifier: MIT
# The C sources as .clang-format lays them out. `make format` rewrites them (clang-format -i,
# then scripts/format_comments.py, which keeps a trailing comment's continuation lines under
# its first line, something clang-format leaves where they were); `make format-check` (part of
# make test, plain build) fails when any file is not laid out so (naming the files) or has a line
# longer than .clang-format's ColumnLimit, 100 columns (naming file:line): clang-format keeps
# code within it but rewraps no comment (ReflowComments: false) and breaks no string, so those
# are wrapped by hand. No tracked C file is generated or vendored: none is excepted.
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
    # Columns are characters (UTF-8), not bytes; a tab goes to the next multiple of 8.
    limit=$(awk '$1 == "ColumnLimit:" { print $2 }' .clang-format)
    # shellcheck disable=SC2086
    long=$(python3 -c '
import sys
limit = int(sys.argv[1])
for f in sys.argv[2:]:
    for i, l in enumerate(open(f, encoding="utf-8").read().split("\n"), 1):
        n = len(l.expandtabs(8))
        if n > limit:
            print("%s:%d: %d columns" % (f, i, n))
' "$limit" $files)
    if [ -n "$long" ]; then
        echo "$long"
        echo "format: lines longer than $limit columns (rewrap the comment, break the string)"
    fi
    if [ -n "$bad" ]; then
        echo "format: not as .clang-format lays them out (make format fixes them):$bad"
    fi
    [ -z "$long$bad" ] || exit 1
    echo "format: $n C files as .clang-format lays them out, no line over $limit columns"
else
    # shellcheck disable=SC2086
    clang-format -i --style=file $files
    # shellcheck disable=SC2086
    python3 scripts/format_comments.py $files
fi
