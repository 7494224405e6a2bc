#!/bin/sh
# SPDX-License-Identifier: MIT
# docs/pictures.sh - regenerates the pictures of docs/: traces docs/signals.c under each
# signalling pattern and converts each trace with tools/trace2mermaid into a Mermaid diagram
# (docs/PATTERN.mmd) and an SVG timeline (docs/PATTERN.svg).
#
# Run from the top of the tree after `make` (it links build/plain/libchan.a, which must have
# been built with trace/). Needs python3. The SVGs are committed; timing shows in them (who
# blocked, for how long), so each run draws slightly different pictures of the same story.
set -eu
lib=${LIB:-build/plain/libchan.a}
[ -f "$lib" ] || { echo "pictures.sh: $lib missing: run make first" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -std=c11 -O2 -pthread -I. -Itrace -o "$tmp/signals" docs/signals.c "$lib"
for p in handoff buffered close; do
    CHAN_TRACE="$tmp/$p.json" "$tmp/signals" "$p"
    case $p in
    handoff)  title="Unbuffered: each send returns once the manager has the value" ;;
    buffered) title="Buffered (cap 3): the worker does not wait; values wait in the buffer" ;;
    close)    title="Signal without data: one close wakes every waiter" ;;
    esac
    python3 tools/trace2mermaid "$tmp/$p.json" --blocks -o "docs/$p.mmd" --svg "docs/$p.svg" \
        --title "$title"
    echo "docs/$p.mmd docs/$p.svg"
done
