#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs libchan's man pages under MANDIR (man3/, man7/), and for every further name in a
# page's NAME section a one-line link page (".so man3/chan_send.3") so that `man chan_recv`
# works. Usage: man/install.sh [--links-only] MANDIR page...
set -eu
links_only=false
[ "$1" = --links-only ] && { links_only=true; shift; }
mandir=$1; shift
install -d "$mandir/man3" "$mandir/man7"
for page in "$@"; do
    base=$(basename "$page")
    sec=${base##*.}
    $links_only || install -m 644 "$page" "$mandir/man$sec/$base"
    # The names this page documents: the .Nm lines of its NAME section.
    for name in $(sed -n '/^\.Sh NAME/,/^\.Nd/s/^\.Nm \([A-Za-z0-9_]*\).*/\1/p' "$page"); do
        link="$mandir/man$sec/$name.$sec"
        [ "$name.$sec" = "$base" ] && continue
        [ -e "$(dirname "$page")/$name.$sec" ] && continue   # a page of its own wins
        printf '.so man%s/%s\n' "$sec" "$base" > "$link"
        chmod 644 "$link"
    done
done
