#!/bin/sh
# Runs the test programs of one build mode (plain, asan, tsan) and fails if any fails.
# Each program is a Check suite: every test runs in its own process with a time-out.
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
failed=""
for t in "$@"; do
    echo "== [$mode] $(basename "$t")"
    "$t" || failed="$failed $(basename "$t")"
done
if [ -n "$failed" ]; then
    echo "[$mode] FAILED:$failed"
    exit 1
fi
echo "[$mode] all test programs passed"
