#!/bin/sh
# SPDX-License-Identifier: MIT
# docs/play/capture.sh DRIVERS OUTDIR [PATTERN...] - runs every pattern of drivers.c (or only
# those named) under a trace, into OUTDIR/PATTERN.json. A run is timed by sleeps: on a busy
# machine a step can come late and the story change, or (rarely) a trace not add up. So each
# trace is checked by tools/trace2play --strict, and against the order of events its page's
# summary tells (patterns.json's "story", docs/play/build.py --story), and a pattern is run
# again, up to 5 times, until it adds up and tells that story.
set -eu
drivers=$1 out=$2
shift 2
patterns=${*:-$("$drivers" --list)}
for p in $patterns; do
    "$drivers" --list | grep -qx "$p" || { echo "capture.sh: no pattern '$p' in $drivers" >&2; exit 2; }
done
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for p in $patterns; do
    ok=
    for try in 1 2 3 4 5; do
        rm -f "$tmp/$p.json"
        if CHAN_TRACE="$tmp/$p.json" "$drivers" "$p" &&
           python3 tools/trace2play --strict "$tmp/$p.json" -o /dev/null &&
           python3 docs/play/build.py --story "$p" "$tmp/$p.json"; then
            ok=1
            break
        fi
        echo "capture.sh: $p: run $try did not add up; again" >&2
    done
    [ -n "$ok" ] || { echo "capture.sh: $p: no good trace in 5 runs" >&2; exit 1; }
    mv "$tmp/$p.json" "$out/$p.json"
    echo "$out/$p.json"
done
