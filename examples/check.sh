#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs example programs and checks them. Usage: examples/check.sh DIR NAME...
# For each NAME, DIR/NAME must exit 0 within the time limit, and its standard output must hold
# the lines of examples/expected/NAME.out. Lines are compared sorted: where threads print in
# an order that depends on scheduling, the set of lines is the property checked; what must be
# in order (the sieve's primes, the pipeline's output) each program checks itself, and exits
# 1 if it is not. Standard error carries the narration whose content depends on timing
# (counts of dropped values, who waited): it is shown only when a check fails.
set -u
dir=$1; shift
limit=${EXAMPLE_TIMEOUT:-120}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=""
n=0
for name in "$@"; do
    n=$((n + 1))
    exp="examples/expected/$name.out"
    rm -f "$tmp/exp.sorted"
    [ -f "$exp" ] && LC_ALL=C sort "$exp" > "$tmp/exp.sorted"
    timeout "$limit" "$dir/$name" > "$tmp/out" 2> "$tmp/err"
    rc=$?
    why=""
    if [ $rc != 0 ]; then
        why="exit status $rc"
        [ $rc = 124 ] && why="no exit within ${limit}s"
    elif [ ! -f "$exp" ]; then
        why="no $exp"
    elif ! LC_ALL=C sort "$tmp/out" | cmp -s - "$tmp/exp.sorted"; then
        why="output differs from $exp (sorted; < expected, > got)"
    fi
    if [ -n "$why" ]; then
        echo "examples: $name FAILED: $why"
        [ -f "$exp" ] && LC_ALL=C sort "$tmp/out" | diff "$tmp/exp.sorted" - | head -20
        echo "--- $name stderr:"; head -30 "$tmp/err"
        failed="$failed $name"
    fi
done
if [ -n "$failed" ]; then
    echo "examples ($dir): FAILED:$failed"
    exit 1
fi
echo "examples ($dir): $n programs ran, output checked: $n passed, 0 failed"
