#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the checks of one build of `make test`, in the order given (the Makefile's CHECKS_MODE
# list), and fails if any fails; every check runs, whatever came before it.
# Usage: test/checks.sh MODE COUNTFILE CHECK...   (each CHECK a make target; MAKE: the make)
#
# One line per check: "[plain] dist-check: ok (4 s): <its last line>". A check's whole output
# goes to build/MODE/logs/CHECK.log, and is printed when the check fails; V=1 prints it always.
# The unit tests print a line per test program themselves (test/run.sh). COUNTFILE gets "P F"
# lines: the unit tests' Check counts, then 1 per other check passed (P) or failed (F).
set -u
mode=$1 count=$2
shift 2
make=${MAKE:-make}
quiet=-s
[ "${V:-0}" = 1 ] && quiet=
logs=build/$mode/logs
mkdir -p "$logs"
: > "$count"
failed=""
for c in "$@"; do
    log=$logs/$c.log
    start=$(date +%s)
    if [ "$c" = unit ]; then
        COUNT_FILE=$count $make --no-print-directory $quiet MODE="$mode" unit || failed="$failed unit"
        continue
    fi
    if [ "${V:-0}" = 1 ]; then
        echo "== [$mode] $c"
        { $make --no-print-directory $quiet MODE="$mode" "$c" 2>&1; echo $? > "$log.rc"; } | tee "$log"
        rc=$(cat "$log.rc")
        rm -f "$log.rc"
    else
        $make --no-print-directory $quiet MODE="$mode" "$c" > "$log" 2>&1
        rc=$?
    fi
    secs=$(($(date +%s) - start))
    if [ "$rc" = 0 ]; then
        echo "[$mode] $c: ok ($secs s): $(tail -n 1 "$log")"
        echo "1 0" >> "$count"
    else
        [ "${V:-0}" = 1 ] || { echo "== [$mode] $c: output"; cat "$log"; }
        echo "[$mode] $c: FAILED (exit status $rc, $secs s; output above and in $log)"
        echo "0 1" >> "$count"
        failed="$failed $c"
    fi
done
awk -v m="$mode" '{ p += $1; f += $2 } END { printf "[%s] checks: %d passed, %d failed\n", m, p, f }' \
    "$count"
[ -z "$failed" ] || { echo "[$mode] FAILED:$failed"; exit 1; }
