#!/bin/sh
# SPDX-License-Identifier: MIT
# test/spdx.sh - every source file of the tree carries the licence's SPDX line near its top
# (LICENSE: MIT). Usage: test/spdx.sh [--fix]   (--fix adds the line where it is missing:
# first line, or second after a #! line, in the comment syntax of the file's language).
# Generated files (docs/play's pages and data, traces, expected outputs, pictures) and the
# fuzz corpora are not sources and are left out.
set -eu
cd "$(dirname "$0")/.."
fix=false
[ "${1:-}" = --fix ] && fix=true
tag='SPDX-License-Identifier: MIT'

# The comment line for a file, or nothing when the file is not a source.
line_for() {
    case $1 in
    test/fuzz/corpus_*|docs/play/data/*) ;;
    *.c|*.h|*.S|*.pml|*.map|*.css) echo "/* $tag */" ;;
    *.go|*.rs|*.js|*/go.mod) echo "// $tag" ;;
    *.3|*.7) echo ".\\\" $tag" ;;
    *.sh|*.py|*.mk|*/Makefile|Makefile|*.toml|*.in|.ci/run|tools/trace2*|scripts/amalgamate)
        echo "# $tag" ;;
    esac
}

# The tree's files: git's list in a checkout, else (a copy, an unpacked archive) every file but
# the build's outputs. Either way some are found: a list that came back empty would pass.
files=$(git ls-files 2>/dev/null) ||
    files=$(find . \( -name .git -o -path ./build -o -path ./dist \) -prune -o -type f -print |
            sed 's|^\./||' | sort)
[ -n "$files" ] || { echo "spdx: found no files"; exit 1; }
missing=0 n=0
for f in $files; do
    l=$(line_for "$f")
    [ -n "$l" ] || continue
    n=$((n + 1))
    head -n 3 "$f" | grep -qF "$tag" && continue
    if $fix; then
        if head -n 1 "$f" | grep -q '^#!'; then
            { head -n 1 "$f"; echo "$l"; tail -n +2 "$f"; } > "$f.spdx"
        else
            { echo "$l"; cat "$f"; } > "$f.spdx"
        fi
        chmod --reference="$f" "$f.spdx" && mv "$f.spdx" "$f"
        echo "spdx: added to $f"
    else
        echo "spdx: $f has no '$tag' in its first 3 lines"
        missing=$((missing + 1))
    fi
done
$fix && exit 0
[ "$missing" = 0 ] || { echo "spdx: $missing of $n source files lack the line (test/spdx.sh --fix)"; exit 1; }
[ "$n" -gt 0 ] || { echo "spdx: found no source files"; exit 1; }
echo "spdx: $n source files carry the MIT licence's SPDX line"
