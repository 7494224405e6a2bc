#!/bin/sh
# SPDX-License-Identifier: MIT
# hide-headers.sh - a copy of the C compiler's system include directories with some headers
# left out, to build as on a machine that lacks them (liburcu's, hwloc's). The copy is a farm
# of symbolic links, one per entry of each directory except those named; prints the flags that
# make the compiler search it instead (-nostdinc -isystem ...), in the compiler's own order.
# Usage: test/hide-headers.sh CC OUTDIR NAME...   (NAME: an entry to leave out, e.g. urcu,
# 'urcu*.h', hwloc, hwloc.h; shell patterns, matched in every directory)
set -eu
cc=$1 out=$2
shift 2
rm -rf "$out"
flags="-nostdinc"
i=0
for dir in $(echo | $cc -E -Wp,-v -x c - 2>&1 | sed -n 's/^ \(\/.*\)/\1/p'); do
    i=$((i + 1))
    copy="$out/$i"
    mkdir -p "$copy"
    for entry in "$dir"/* ; do
        [ -e "$entry" ] || continue
        name=$(basename "$entry")
        hide=false
        for pat in "$@"; do
            # shellcheck disable=SC2254
            case $name in $pat) hide=true ;; esac
        done
        $hide || ln -s "$entry" "$copy/$name"
    done
    flags="$flags -isystem $copy"
done
echo "$flags"
