#!/bin/sh
# SPDX-License-Identifier: MIT
# man/examples.sh - every example of the man pages compiles clean, and every whole program
# among them runs. Usage: man/examples.sh OUTDIR CC "MODEFLAGS" LINK...
# (LINK: the libraries and flags a program links with, e.g. build/plain/libchan.a -pthread)
# or: man/examples.sh --installed OUTDIR CC, against the libchan that pkg-config finds
# installed (test/install.sh), each program linked as its page tells a user to link it:
# `pkg-config --libs PKG`, PKG being libchan-mpg where the page's LIBRARY section names it,
# else libchan, unless a `.\" ex-pkg: PKG` above the block names another (where the page's
# text says that this program needs it).
#
# An example is a literal block (.Bd -literal ... .Ed) of a page's EXAMPLES section:
#   - A block that defines main() is a whole program: built as it is (its own #includes) with
#     CC -std=c11 -Wall -Wextra -Werror -pedantic MODEFLAGS, linked with LINK, and run; it
#     must exit 0 within 60 s.
#   - Any other block is a fragment: it is compiled (not linked) with the same flags, after a
#     prelude that includes the C library's usual headers and all of libchan's, and after the
#     roff comments `.\" ex: TEXT` written above the block (declarations of the names the
#     fragment uses but does not show; invisible in the rendered page). Its file-scope parts
#     (function definitions, and items that begin with static, struct NAME {, typedef, enum,
#     union, extern or #) stay at file scope; every other top-level item becomes a statement
#     of one function, in order.
#   - A block preceded by `.\" ex-skip: REASON` (shell commands, say) is not C and is skipped.
# The roff escapes of literal text are undone first: \e is a backslash, \& nothing, \- a dash;
# a line that is only `...` (written \&...) stands for code left out and becomes a comment.
set -u
installed=false pkg=""
if [ "$1" = --installed ]; then
    installed=true
    shift
    set -- "$1" "$2" ""
fi
out=$1 cc=$2 modeflags=$3
shift 3
link="$*"
cflags="-std=c11 -Wall -Wextra -Werror -pedantic -I. -Itime -Isync -Itrace -Isched -Iio"
$installed && cflags="-std=c11 -Wall -Wextra -Werror -pedantic $(pkg-config --cflags libchan-mpg)"
rm -rf "$out" && mkdir -p "$out"

cat > "$out/prelude.h" <<'EOF'
#define _GNU_SOURCE
#include <err.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chan.h"
#include "chan_io.h"
#include "chan_leak.h"
#include "chan_sched_mpg.h"
#include "chan_sync.h"
#include "chan_time.h"
#include "chan_trace.h"
#include "chan_typed.h"
EOF

# Writes OUTDIR/PAGE-N.c for block N of each page, and prints "PAGE-N program|fragment|skip".
extract() {
    awk -v out="$out" -v page="$1" '
    function unroff(s) {
        gsub(/\\e/, "\\", s); gsub(/\\&/, "", s); gsub(/\\-/, "-", s)
        return s
    }
    # Brace depth change of a line, strings, characters and comments left out.
    function braces(s,   t) {
        t = s
        gsub(/"([^"\\]|\\.)*"/, "", t); gsub(/'\''([^'\''\\]|\\.)*'\''/, "", t)
        gsub(/\/\*.*\*\//, "", t); sub(/\/\/.*/, "", t)
        return gsub(/\{/, "{", t) - gsub(/\}/, "}", t)
    }
    function file_scope(first, second) {
        if (first ~ /^(#|static |typedef |extern |enum |union )/) return 1
        if (first ~ /^struct [A-Za-z_][A-Za-z_0-9]* *\{/) return 1
        return first ~ /^[A-Za-z_].*\)$/ && second ~ /^\{/   # a function definition
    }
    function flush(   f, i, item, first, second, nitems, depth, d, pending, body, top, line) {
        n++
        f = out "/" page "-" n ".c"
        if (skip != "") { print page "-" n " skip (" skip ")"; return }
        if (block ~ /(^|\n)[a-z][a-z ]*main\(/) {
            printf "%s", decl > f; printf "%s", block > f; close(f)
            print page "-" n " program" (pkg != "" ? "@" pkg : ""); return
        }
        # Split into top-level items: a comment-only line joins the item after it.
        top = ""; body = ""; item = ""; pending = ""; depth = 0; first = ""; second = ""
        nitems = split(block, lines, "\n")
        for (i = 1; i <= nitems; i++) {
            line = lines[i]
            if (depth == 0 && item == "") {
                if (line ~ /^[ \t]*$/) { pending = pending line "\n"; continue }
                if (line ~ /^\/\*.*\*\/[ \t]*$/) { pending = pending line "\n"; continue }
                first = line; second = ""
            } else if (second == "") {
                second = line
            }
            item = item line "\n"
            depth += braces(line)
            if (depth == 0 && (line ~ /[;}][ \t]*(\/\*.*\*\/)?[ \t]*$/ || line ~ /^#/)) {
                if (second == "" && i < nitems) second = lines[i + 1]
                if (file_scope(first, second)) top = top pending item
                else body = body pending item
                item = ""; pending = ""
            }
        }
        body = body pending item
        printf "#include \"prelude.h\"\n%s\n%s", decl, top > f
        if (body ~ /[^ \t\n]/) {
            printf "\nvoid man_example(void);\nvoid man_example(void)\n{\n" > f
            printf "%s}\n", body > f
        }
        close(f)
        print page "-" n " fragment"
    }
    /^\.Sh / { ex = ($0 == ".Sh EXAMPLES"); decl = ""; skip = ""; pkg = ""; next }
    !ex { next }
    /^\.\\" ex: / { d = $0; sub(/^\.\\" ex: /, "", d); decl = decl d "\n"; next }
    /^\.\\" ex-skip: / { skip = $0; sub(/^\.\\" ex-skip: /, "", skip); next }
    /^\.\\" ex-pkg: / { pkg = $0; sub(/^\.\\" ex-pkg: /, "", pkg); next }
    /^\.Bd -literal/ { inblock = 1; block = ""; next }
    inblock && /^\.Ed/ { inblock = 0; flush(); decl = ""; skip = ""; pkg = ""; next }
    inblock {
        line = unroff($0)
        if (line ~ /^[ \t]*\.\.\.[ \t]*$/) { sub(/\.\.\./, "/* ... */", line) }
        block = block line "\n"
    }
    ' "$2"
}

fail=0 nfrag=0 nprog=0 nskip=0
log="$out/log"
for page in man/*.3 man/*.7; do
    name=$(basename "$page")
    for entry in $(extract "$name" "$page" | tr ' ' ':'); do
        id=${entry%%:*} kind=${entry#*:}
        src="$out/$id.c"
        case $kind in
        skip*) nskip=$((nskip + 1)) ;;
        fragment)
            nfrag=$((nfrag + 1))
            # shellcheck disable=SC2086
            if ! $cc $cflags $modeflags -I"$out" -c "$src" -o "$out/$id.o" 2>"$log"; then
                echo "man-examples: $id (a fragment of $page) does not compile clean:"
                cat "$log"; echo "--- $src:"; cat -n "$src"; fail=1
            fi ;;
        program*)
            nprog=$((nprog + 1))
            if $installed; then
                pkg=${kind#program@}
                if [ "$pkg" = "$kind" ]; then
                    pkg=libchan
                    sed -n '/^\.Sh LIBRARY/,/^\.Sh /p' "$page" | grep -q libchan-mpg && pkg=libchan-mpg
                fi
                link=$(pkg-config --libs "$pkg")
            fi
            # shellcheck disable=SC2086
            if ! $cc $cflags $modeflags "$src" -o "$out/$id" $link 2>"$log"; then
                echo "man-examples: $id (a program in $page) does not build clean${pkg:+ with pkg-config --libs $pkg}:"
                cat "$log"; fail=1
            elif ! timeout 60 "$out/$id" >"$log" 2>&1; then
                echo "man-examples: $id (a program in $page) did not exit 0:"
                head -20 "$log"; fail=1
            fi ;;
        esac
    done
done
[ $fail = 0 ] || { echo "man-examples: FAILED"; exit 1; }
echo "man-examples: $nfrag fragments compile clean, $nprog programs build and run" \
     "($nskip skipped: not C) [$cc -std=c11 -Wall -Wextra -Werror -pedantic $modeflags]"
