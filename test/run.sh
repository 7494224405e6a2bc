#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the test programs of one build mode (plain, asan, tsan) and fails if any fails.
# Each program is a Check suite: every test runs in its own process with a time-out.
# Prints one line per program ("[mode] test_chan: 57 passed, 0 failed (3 s)"); a program that
# fails prints its whole output first, and V=1 prints every program's. Closes with one line
# "[mode] unit: N passed, N failed"; with COUNT_FILE set, also appends "N F" to that file.
set -u
mode=$1; shift
case $mode in
asan) export ASAN_OPTIONS="abort_on_error=0:detect_leaks=1:${ASAN_OPTIONS:-}"
      export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
      export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-4} ;;
tsan) export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:${TSAN_OPTIONS:-}"
      export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-4} ;;
esac
export CHAN_TEST_MODE=$mode
out=$(mktemp)
trap 'rm -f "$out"' EXIT
failed="" passed_n=0 failed_n=0
for t in "$@"; do
    name=$(basename "$t")
    start=$(date +%s)
    "$t" >"$out" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    # Check's summary: "NN%: Checks: N, Failures: F, Errors: E"
    set -- $(sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' "$out") 0 0 0
    p=$(($1 - $2 - $3)) f=$(($2 + $3))
    if [ $rc -ne 0 ]; then
        failed="$failed $name"
        [ "$f" -gt 0 ] || f=1 # died without a summary
    fi
    if [ $rc -ne 0 ] || [ "${V:-0}" = 1 ]; then
        echo "== [$mode] $name: output"
        cat "$out"
    fi
    why=""
    [ $rc -eq 0 ] || why=" FAILED (exit status $rc)"
    echo "[$mode] $name: $p passed, $f failed ($secs s)$why"
    passed_n=$((passed_n + p))
    failed_n=$((failed_n + f))
done
[ -z "$failed" ] || echo "[$mode] unit FAILED:$failed"
echo "[$mode] unit: $passed_n passed, $failed_n failed"
[ -z "${COUNT_FILE:-}" ] || echo "$passed_n $failed_n" >> "$COUNT_FILE"
[ -z "$failed" ]
