#!/bin/sh
# SPDX-License-Identifier: MIT
# man-lint: checks libchan's man pages. Usage: man/lint.sh STAGEDIR (a scratch directory)
#   1. mandoc -Tlint is clean, at every level down to style, except for references to manuals
#      this machine may lack (memcpy(3) without manpages-dev) -- ours are checked in 3.
#   2. Every page installs (man/install.sh) and every function the public headers declare
#      (chan.h, time/chan_time.h, trace/chan_trace.h, trace/chan_leak.h, sync/chan_sync.h,
#      io/chan_io.h) is reachable as `man NAME` from the installed tree.
#   3. Every cross reference to a libchan page (.Xr chan... N) names an installed page.
#   4. No rendered line is wider than 80 columns (the table of chan(7) in particular).
#   5. chan(7) leads to every page: its overview (DESCRIPTION, before the first subsection)
#      and its SEE ALSO each name every other page of man/.
set -eu
stage=$1
pages=$(ls man/*.3 man/*.7)
fail=0

# mandoc writes its messages to standard output, buffered, and the mandoc.db notes to standard
# error: read them one after the other, not through one pipe where their lines can interleave.
err=$(mktemp)
out=$({ mandoc -Tlint $pages 2>"$err"; cat "$err"; } |
      grep -v 'referenced manual not found' | grep -v 'mandoc.db' || true)
rm -f "$err"
if [ -n "$out" ]; then
    echo "$out"; echo "man-lint: mandoc -Tlint is not clean"; fail=1
fi

rm -rf "$stage"
sh man/install.sh "$stage" $pages
headers=$(ls chan.h time/chan_time.h trace/chan_trace.h trace/chan_leak.h sync/chan_sync.h \
    io/chan_io.h 2>/dev/null)
for fn in $(sed -n 's/^[^#/ ].*[ *]\(chan_[a-z_]*\)(.*/\1/p' $headers | sort -u); do
    if ! man -M "$stage" -w "$fn" >/dev/null 2>&1; then
        echo "man-lint: no man page for $fn (declared in $headers)"; fail=1
    elif ! man -M "$stage" -P cat "$fn" 2>/dev/null | grep -q "$fn"; then
        echo "man-lint: man $fn does not render a page that mentions $fn"; fail=1
    fi
done

for ref in $(sed -n 's/^\.Xr \(chan[a-z_]*\) \([0-9]\).*/\1.\2/p' $pages | sort -u); do
    sec=${ref##*.}
    [ -e "$stage/man$sec/$ref" ] || { echo "man-lint: .Xr to a missing page: $ref"; fail=1; }
done

for p in $pages; do
    wide=$(mandoc -Tascii "$p" | col -bx | awk 'length > 80' || true)
    [ -z "$wide" ] || { echo "man-lint: $p renders lines wider than 80 columns:"; echo "$wide"; fail=1; }
done

overview=$(awk '/^\.Sh DESCRIPTION/ { on = 1; next } on && /^\.S[sh]/ { exit } on' man/chan.7 |
           sed -n 's/^\.\(Pq \)\{0,1\}Xr \(chan[a-z_]*\) \([0-9]\).*/\2.\3/p')
seealso=$(awk '/^\.Sh SEE ALSO/ { on = 1; next } on && /^\.Sh/ { exit } on' man/chan.7 |
          sed -n 's/^\.Xr \(chan[a-z_]*\) \([0-9]\).*/\1.\2/p')
for p in $pages; do
    b=$(basename "$p")
    [ "$b" = chan.7 ] && continue
    echo "$overview" | grep -qx "$b" || { echo "man-lint: chan(7)'s overview does not name $b"; fail=1; }
    echo "$seealso" | grep -qx "$b" || { echo "man-lint: chan(7)'s SEE ALSO does not name $b"; fail=1; }
done

[ $fail = 0 ] && echo "man-lint: $(echo $pages | wc -w) pages clean, every function of" \
    "$(echo $headers) has a page"
exit $fail
