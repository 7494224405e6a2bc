#!/bin/sh
# SPDX-License-Identifier: MIT
# test/layers.sh - who may include what (docs/DESIGN.md, "Who may include what"): each file of
# the library includes only headers of its own layer or of a layer below it, and a room's
# private header only from the rooms allowed to read it. Reads the #include "..." lines of the
# library's sources (the top of the tree and its rooms; not test/, examples/, bench/ ...),
# resolves each as the compiler does (the file's own directory, then -I. and the rooms), and
# prints every include that breaks the rule. Run from the top of the tree; part of `make test`
# (plain). Exit status 1 if any include breaks it.
set -eu

# The layers, bottom up. A new room gets its line here and in docs/DESIGN.md.
layer() {
    case $1 in
    chan.h | chan_typed.h) echo 0 ;;           # the public contract
    seam.h | chan_internal.h | trace/hooks.h | \
    sudog.c | ring.c | chan.c | select.c) echo 1 ;; # the core and its two seams
    trace/*) echo 2 ;;                          # the tracer: observes the core
    time/* | io/*) echo 3 ;;                    # timers and contexts; the outside world
    sync/*) echo 4 ;;                           # WaitGroup and group, on time/'s contexts
    sched/*) echo 5 ;;                          # libchan-mpg, on everything else
    *) echo "" ;;
    esac
}
name() {
    case $1 in
    0) echo "the public contract" ;; 1) echo "the core" ;; 2) echo "trace/" ;;
    3) echo "time/, io/" ;; 4) echo "sync/" ;; 5) echo "sched/" ;;
    esac
}

# Private headers: who may include them, beyond the file's own room.
private_ok() { # private_ok HEADER FILE
    case $1 in
    chan_internal.h) # the core's structures: the core, and the tracer's hooks that read them
        case $2 in trace/*) return 0 ;; *) return 1 ;; esac ;;
    trace/trace_internal.h) case $2 in trace/*) return 0 ;; *) return 1 ;; esac ;;
    sched/sched_internal.h | sched/fiber.h) case $2 in sched/*) return 0 ;; *) return 1 ;; esac ;;
    *) return 0 ;;
    esac
}

files=$(find . -path ./build -prune -o -path ./dist -prune -o -path ./test -prune \
             -o -path ./examples -prune -o -path ./bench -prune -o -path ./docs -prune \
             -o -path ./tools -prune -o -path ./model -prune -o -path ./man -prune \
             -o -path ./scripts -prune -o -path ./.git -prune \
             -o \( -name '*.c' -o -name '*.h' -o -name '*.S' \) -print | sed 's|^\./||' | sort)

fail=0
nfiles=0
nincl=0
for f in $files; do
    lf=$(layer "$f")
    if [ -z "$lf" ]; then
        echo "layers: $f is in no layer: give its room a line in test/layers.sh and docs/DESIGN.md"
        fail=1
        continue
    fi
    nfiles=$((nfiles + 1))
    dir=$(dirname "$f")
    # Each quoted include, as "LINE HEADER".
    for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
        nincl=$((nincl + 1))
        h=""
        for d in "$dir" . time trace sync io sched; do
            if [ -f "$d/$inc" ]; then h=${d#./}/$inc; h=${h#./}; break; fi
        done
        line=$(grep -n "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"$inc\"" "$f" | head -n 1 | cut -d: -f1)
        if [ -z "$h" ]; then
            echo "layers: $f:$line: \"$inc\" is no file of the tree"
            fail=1
            continue
        fi
        lh=$(layer "$h")
        if [ -z "$lh" ]; then
            echo "layers: $f:$line: includes $h, which is in no layer"
            fail=1
        elif [ "$lh" -gt "$lf" ]; then
            echo "layers: $f:$line: includes $h, of a higher layer ($(name "$lh")) than its own ($(name "$lf"))"
            fail=1
        elif [ "$(dirname "$h")" != "$dir" ] && ! private_ok "$h" "$f"; then
            echo "layers: $f:$line: includes $h, private to its room (use seam.h or a public header)"
            fail=1
        fi
    done
done
if [ $fail != 0 ]; then
    echo "layers: FAILED: a file includes what its layer may not (docs/DESIGN.md, \"Who may include what\")"
    exit 1
fi
echo "layers: $nfiles files of the library, $nincl includes: each of its own layer or below"
