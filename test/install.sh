#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs libchan into a temporary prefix, checks that every file a user needs is there, builds
# a program against it the two ways a user would (shared, through pkg-config, and static,
# against libchan.a; it uses the installed chan.h, chan_typed.h and chan_sync.h), and fully
# static (cc -static, libchan and libchan-mpg: see below), builds and
# runs the man pages' examples as their pages say, runs the installed trace converters, checks
# that the static libraries name globally only what the shared ones export, then uninstalls
# and checks that no file is left behind.
# Part of `make test` (install-check).
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
make=${MAKE:-make}
fail() { echo "install: $*"; exit 1; }
version=$($make --no-print-directory -s print-version)
somajor=${version%%.*}
$make --no-print-directory -s install PREFIX="$prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; fail "make install failed"; }

# Every file, by name (the scheduler's where it is built: MPG=1, as the Makefile says).
mpg=${MPG:-$($make --no-print-directory -s print-mpg)}
want="include/chan.h include/chan_typed.h include/chan_time.h include/chan_trace.h
      include/chan_sync.h lib/libchan.a lib/libchan.so.$version lib/libchan.so.$somajor
      lib/libchan.so lib/pkgconfig/libchan.pc lib/cmake/libchan/libchan-config.cmake
      lib/cmake/libchan/libchan-config-version.cmake share/man/man7/chan.7
      share/man/man3/chan_make.3 share/man/man3/chan_recv.3 bin/trace2mermaid bin/trace2play
      share/libchan/chantrace.py share/libchan/trace2mermaid share/libchan/trace2play"
if [ "$mpg" = 1 ]; then
    want="$want include/chan_sched_mpg.h lib/libchan_mpg.a lib/libchan_mpg.so.$version
          lib/libchan_mpg.so.$somajor lib/libchan_mpg.so lib/pkgconfig/libchan-mpg.pc
          share/man/man3/chan_mpg.3"
fi
n=0
for f in $want; do
    [ -e "$prefix/$f" ] || fail "make install did not install $f"
    n=$((n + 1))
done
# Every page, and a link page for each further name it documents; libchan-mpg's pages (their
# LIBRARY section names it) only where the library is installed.
mpg_page() { sed -n '/^\.Sh LIBRARY/,/^\.Sh /p' "$1" | grep -q '^libchan-mpg'; }
page_names() { sed -n '/^\.Sh NAME/,/^\.Nd/s/^\.Nm \([A-Za-z0-9_]*\).*/\1/p' "$1"; }
pages_as() { # prefix mpg: every page and link page there, or none of libchan-mpg's without it
    for p in man/*.3 man/*.7; do
        s=${p##*.}
        for name in $(basename "$p" ".$s") $(page_names "$p"); do
            f="$1/share/man/man$s/$name.$s"
            if [ "$2" = 1 ] || ! mpg_page "$p"; then
                [ -e "$f" ] || fail "$p: $f not installed"
            else
                [ ! -e "$f" ] || fail "$p: $f installed without libchan-mpg"
            fi
        done
    done
}
pages_as "$prefix" "$mpg"
# Without libchan-mpg (MPG=0) neither the library nor its pages: checked where it is built too.
if [ "$mpg" = 1 ]; then
    $make --no-print-directory -s install MPG=0 PREFIX="$tmp/without" >"$tmp/install0.log" 2>&1 ||
        { cat "$tmp/install0.log"; fail "make install MPG=0 failed"; }
    left=$(find "$tmp/without" -name '*mpg*')
    [ -z "$left" ] || fail "make install MPG=0 installed libchan-mpg's: $left"
    pages_as "$tmp/without" 0
fi
# A staged install (DESTDIR, as a package build makes it) puts the same files under the stage,
# written for their final place (the .pc files and wrappers name /usr/local, not the stage),
# and its uninstall, given the same DESTDIR, removes them all.
stage=$tmp/stage
$make --no-print-directory -s install PREFIX=/usr/local DESTDIR="$stage" >"$tmp/stage.log" 2>&1 ||
    { cat "$tmp/stage.log"; fail "make install DESTDIR= failed"; }
[ "$(cd "$prefix" && find . | sort)" = "$(cd "$stage/usr/local" && find . | sort)" ] ||
    fail "make install DESTDIR=STAGE PREFIX=/usr/local installed other files than PREFIX= does"
if grep -rl "$stage" "$stage" >/dev/null; then
    fail "a staged file names the stage: $(grep -rl "$stage" "$stage" | head -3)"
fi
grep -q '^libdir=/usr/local/lib$' "$stage/usr/local/lib/pkgconfig/libchan.pc" ||
    fail "the staged libchan.pc does not name /usr/local/lib"
$make --no-print-directory -s uninstall PREFIX=/usr/local DESTDIR="$stage" >"$tmp/stage.log" 2>&1 ||
    { cat "$tmp/stage.log"; fail "make uninstall DESTDIR= failed"; }
left=$(find "$stage" ! -type d)
[ -z "$left" ] || fail "make uninstall DESTDIR= left behind: $left"

cat > "$tmp/prog.c" <<'PROG'
#include <chan.h>
#include <chan_sync.h>
#include <chan_typed.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

CHAN_TYPED(int_chan, int);
static chan_wg_t *wg;

static void *produce(void *arg)
{
    int_chan *c = arg;
    for (int i = 1; i <= 10; i++)
        int_chan_send(*c, i);
    chan_wg_done(wg);
    return NULL;
}

int main(void)
{
    int_chan c = int_chan_make(0);
    wg = chan_wg_make();
    pthread_t t;
    chan_wg_add(wg, 1);
    pthread_create(&t, NULL, produce, &c);
    int v, sum = 0;
    struct chan_case cs[] = {int_chan_case_recv(c, &v), chan_case_recv(chan_wg_chan(wg), NULL)};
    while (chan_select(cs, 2) == 0)
        sum += v;
    pthread_join(t, NULL);
    /* The library and the header it was compiled with agree. */
    printf("%s %d %d %d\n", chan_version(), sum, int_chan_free(c) + chan_wg_free(wg),
           strcmp(chan_version(), CHAN_VERSION_STRING));
    return 0;
}
PROG
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[ "$(pkg-config --modversion libchan)" = "$version" ] || fail "libchan.pc: version is not $version"
want="$version 55 0 0"
# shellcheck disable=SC2046
cc -o "$tmp/shared" "$tmp/prog.c" $(pkg-config --cflags --libs libchan)
got=$(LD_LIBRARY_PATH="$prefix/lib" "$tmp/shared")
[ "$got" = "$want" ] || fail "shared build printed '$got', want '$want'"
# shellcheck disable=SC2046
cc -o "$tmp/static" "$tmp/prog.c" $(pkg-config --cflags libchan) "$prefix/lib/libchan.a" \
    $(pkg-config --static --libs-only-other libchan)
got=$("$tmp/static")
[ "$got" = "$want" ] || fail "static build printed '$got', want '$want'"
if ldd "$tmp/static" | grep -q libchan; then fail "static build links libchan.so"; fi
# A fully static program (cc -static, pkg-config --static): with libchan alone it links and
# runs, with no dynamic section. With libchan-mpg it links only where the compiler finds the
# static archives of hwloc's own dependencies: Debian's libhwloc.a calls libudev, of which
# Debian ships no static archive (README.md, "A fully static program"). So where the compiler
# finds no libudev.a the link must fail for that reason alone: "cannot find -ludev", and,
# without -ludev, undefined references to udev_* and to nothing else; elsewhere (a libudev.a, or
# an hwloc built without libudev) it must link and run.
# shellcheck disable=SC2046
cc -static -o "$tmp/full" "$tmp/prog.c" $(pkg-config --cflags --static --libs libchan) \
    2>"$tmp/full.err" || { cat "$tmp/full.err"; fail "cc -static ... libchan failed"; }
got=$("$tmp/full")
[ "$got" = "$want" ] || fail "the fully static build printed '$got', want '$want'"
if readelf -d "$tmp/full" | grep -q NEEDED; then fail "cc -static: the program needs a .so"; fi
static_mpg="libchan-mpg not installed"
if [ "$mpg" = 1 ]; then
    line=$(pkg-config --cflags --static --libs libchan-mpg)
    # shellcheck disable=SC2086
    if cc -static -o "$tmp/fullmpg" test/cmake/gs.c $line 2>"$tmp/fullmpg.err"; then
        got=$(timeout 60 "$tmp/fullmpg") || fail "the fully static program with Gs failed"
        [ "$got" = "100 5050 0 0 0" ] || fail "the fully static program with Gs printed '$got'"
        static_mpg="libchan-mpg linked and ran"
    else
        case $(cc -print-file-name=libudev.a) in
        */*) cat "$tmp/fullmpg.err"; fail "cc -static ... libchan-mpg failed, libudev.a found" ;;
        esac
        grep -q 'cannot find -ludev' "$tmp/fullmpg.err" ||
            { cat "$tmp/fullmpg.err"; fail "cc -static ... libchan-mpg: not for libudev.a"; }
        # shellcheck disable=SC2046
        if cc -static -o "$tmp/fullmpg" test/cmake/gs.c $(echo " $line " | sed 's/ -ludev / /') \
            2>"$tmp/fullmpg.err"; then
            fail "cc -static ... libchan-mpg without -ludev linked: hwloc needs no libudev here"
        fi
        undef=$(sed -n "s/.*undefined reference to \`\([^']*\)'.*/\1/p" "$tmp/fullmpg.err" |
                sort -u)
        if [ -z "$undef" ] || echo "$undef" | grep -qv '^udev_'; then
            cat "$tmp/fullmpg.err"; fail "cc -static ... libchan-mpg lacks more than libudev"
        fi
        static_mpg="libchan-mpg refused for want of libudev.a alone ($(echo "$undef" | wc -l)"
        static_mpg="$static_mpg udev_* functions of libhwloc.a)"
    fi
fi
[ "$(readlink "$prefix/lib/libchan.so.$somajor")" = "libchan.so.$version" ] || fail "soname link"
objdump -p "$prefix/lib/libchan.so" | grep -q "SONAME *libchan.so.$somajor" || fail "soname"
if [ "$mpg" = 1 ]; then
    objdump -p "$prefix/lib/libchan_mpg.so" | grep -q "SONAME *libchan_mpg.so.$somajor" ||
        fail "libchan_mpg.so's soname"
fi

# The static libraries name globally what the shared ones export, nothing more: their internal
# functions and variables are local (the Makefile's static/%.a), so a program with names of its
# own that libchan uses inside links against either.
names() { nm "$@" 2>/dev/null | awk 'NF == 3 && $2 ~ /[A-Z]/ && $2 != "U" && $3 !~ /^LIBCHAN/ \
          { sub(/@.*/, "", $3); print $3 }' | sort -u; }
libs=chan
[ "$mpg" = 1 ] && libs="chan chan_mpg"
for l in $libs; do
    [ "$(names -g --defined-only "$prefix/lib/lib$l.a")" = \
      "$(names -D --defined-only "$prefix/lib/lib$l.so")" ] ||
        fail "lib$l.a's global names are not lib$l.so's exports: $(names -g --defined-only \
              "$prefix/lib/lib$l.a" | grep -v '^chan_' | head -5 | tr '\n' ' ')..."
done
# A program that defines every internal name of the tree's libraries (build/plain, where they
# are global across the objects) as a variable of its own, then uses channels.
{
    # shellcheck disable=SC2046
    names -g --defined-only $(for l in $libs; do echo "build/plain/lib$l.a"; done) |
        grep -v '^chan_' | sed 's/.*/int &;/'
    echo '#include <chan.h>'
    echo 'int main(void) { chan_t *c = chan_make(sizeof(int), 1); int v = 7;'
    echo '    return chan_send(c, &v) || chan_recv(c, &v) || v != 7 || chan_free(c); }'
} > "$tmp/own.c"
[ "$(grep -c '^int ' "$tmp/own.c")" -gt 10 ] || fail "found no internal names to define"
# Every object of the archives in (--whole-archive), each of its names met.
# shellcheck disable=SC2046
cc -o "$tmp/own" "$tmp/own.c" -I"$prefix/include" -Wl,--whole-archive \
    $(for l in $libs; do echo "$prefix/lib/lib$l.a"; done) -Wl,--no-whole-archive \
    $([ "$mpg" = 1 ] && echo -lhwloc) -pthread 2>"$tmp/own.err" ||
    { head -5 "$tmp/own.err"; fail "a program with names of its own that libchan uses inside" \
      "does not link against the static libraries"; }
"$tmp/own" || fail "the program with libchan's internal names as its own failed"

# Every example of the man pages against the installed headers, each program linked as its
# page tells a user to (man/examples.sh --installed: pkg-config, the page's library) and run.
# Their prelude includes every header, the scheduler's too: only where it was installed.
if [ "$mpg" = 1 ]; then
    LD_LIBRARY_PATH="$prefix/lib" sh man/examples.sh --installed "$tmp/man-examples" cc \
        >"$tmp/man.log" 2>&1 || { cat "$tmp/man.log"; fail "a man page's example, installed"; }
fi

# The trace converters run as installed commands, from another directory, finding the module
# they share where make install put it.
(cd "$tmp" && "$prefix/bin/trace2mermaid" "$OLDPWD/docs/play/traces/handoff.json") > "$tmp/t.mmd" ||
    fail "the installed trace2mermaid failed"
grep -q '^sequenceDiagram' "$tmp/t.mmd" || fail "trace2mermaid printed no sequence diagram"
(cd "$tmp" && "$prefix/bin/trace2play" --text "$OLDPWD/docs/play/traces/handoff.json") > "$tmp/t.txt" ||
    fail "the installed trace2play failed"
[ -s "$tmp/t.txt" ] || fail "trace2play printed nothing"

# make uninstall removes every file make install put (directories of the prefix may stay).
$make --no-print-directory -s uninstall PREFIX="$prefix" >"$tmp/uninstall.log" 2>&1 ||
    { cat "$tmp/uninstall.log"; fail "make uninstall failed"; }
left=$(find "$prefix" ! -type d)
[ -z "$left" ] || fail "make uninstall left behind: $left"
[ ! -d "$prefix/share/libchan" ] && [ ! -d "$prefix/lib/cmake/libchan" ] ||
    fail "make uninstall left libchan's own directories"
echo "install: $n files installed and found, shared and static builds ran, cc -static: libchan" \
     "linked and ran, $static_mpg; the man pages' examples built as their pages say and ran," \
     "trace converters ran, the static libraries' names are the shared ones' exports, a DESTDIR" \
     "install staged the same files, uninstall left nothing: 9 passed, 0 failed"
