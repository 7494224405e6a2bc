#!/bin/sh
# Runs the test programs of one build mode (plain, asan, tsan) and fails if any fails.
# Each program is a Check suite: every test runs in its own process with a time-out.
# Closes with one line "[mode] checks: N passed, N failed".
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
    echo "== [$mode] $(basename "$t")"
    "$t" >"$out" 2>&1
    rc=$?
    cat "$out"
    # Check's summary: "NN%: Checks: N, Failures: F, Errors: E"
    set -- $(sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' "$out") 0 0 0
    passed_n=$((passed_n + $1 - $2 - $3))
    failed_n=$((failed_n + $2 + $3))
    if [ $rc -ne 0 ]; then
        failed="$failed $(basename "$t")"
        [ "$2" -gt 0 ] || [ "$3" -gt 0 ] || failed_n=$((failed_n + 1)) # died without a summary
    fi
done
[ -z "$failed" ] || echo "[$mode] FAILED:$failed"
echo "[$mode] checks: $passed_n passed, $failed_n failed"
[ -z "$failed" ]
