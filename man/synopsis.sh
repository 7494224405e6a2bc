#!/bin/sh
# SPDX-License-Identifier: MIT
# man/synopsis.sh - every page's SYNOPSIS says what its header declares, exactly as a user
# would copy it. Usage: man/synopsis.sh OUTDIR LIBDIR PAGE...  (LIBDIR: libchan.so, and
# libchan_mpg.so where it is built). For each page, one C file that includes only the headers
# of its .In lines, then:
#   - each function (.Ft TYPE / .Fn NAME "PARAM" ...) must already be declared there
#     (extern __typeof__(NAME) NAME), and is declared again as the page writes it: a return
#     or parameter type that differs is a compile error (conflicting types); a typedef'd
#     function type (.Ft typedef ...) is defined again, which C11 allows only if identical;
#   - each macro (.Fd #define NAME [VALUE]) is defined, to VALUE where the page gives one;
#   - each structure of a literal block is compared member by member with the header's: the
#     same members at the same offsets with compatible types, and the same size; each
#     enumerator has the page's value;
#   - chan_typed(3)'s block: CHAN_TYPED(name, T) instantiated with an int, and every function
#     of the block declared again with name and T put in;
# and the program, which takes the address of every function that is not inline, links as
# the page's LIBRARY section says (its first .Pq: -lchan -pthread, or -lchan_mpg -lchan
# -pthread) against LIBDIR. Part of `make test` (man-synopsis, plain build).
set -eu
out=$1 libdir=$2
shift 2
rm -rf "$out" && mkdir -p "$out"
fail=0 nfn=0 npages=0
for page in "$@"; do
    base=$(basename "$page")
    c=$out/$base.c
    # The SYNOPSIS turned into C checks (awk writes the file; the LIBRARY flags to .lib).
    awk -v libfile="$out/$base.lib" '
    function q(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return s }
    function sa(cond, what) { printf "_Static_assert(%s, \"%s\");\n", cond, q(what) }
    function same(a, b) { return "__builtin_types_compatible_p(" a ", " b ")" }
    function unroff(s) { gsub(/\\e/, "\\", s); gsub(/\\&/, "", s); gsub(/\\-/, "-", s); return s }
    # The quoted and bare arguments of a macro line: .Fn name "int fd" void
    function args(line, a,    n, rest, m) {
        n = 0; rest = line
        while (rest != "") {
            sub(/^[ \t]+/, "", rest)
            if (rest == "") break
            if (substr(rest, 1, 1) == "\"") {
                m = index(substr(rest, 2), "\"")
                a[++n] = substr(rest, 2, m - 1); rest = substr(rest, m + 2)
            } else {
                m = match(rest, /[ \t]/)
                if (m == 0) { a[++n] = rest; rest = "" }
                else { a[++n] = substr(rest, 1, m - 1); rest = substr(rest, m) }
            }
        }
        return n
    }
    function member(line,    name) {   # the name a member line declares
        if (match(line, /\(\*[A-Za-z_0-9]+\)/))
            return substr(line, RSTART + 2, RLENGTH - 3)
        sub(/;.*/, "", line); sub(/\[.*/, "", line)
        match(line, /[A-Za-z_][A-Za-z_0-9]*[ \t]*$/)
        name = substr(line, RSTART, RLENGTH); sub(/[ \t]+$/, "", name)
        return name
    }
    /^\.Sh LIBRARY/ { lib = 1; next }
    /^\.Sh SYNOPSIS/ { lib = 0; syn = 1; next }
    /^\.Sh / { if (syn) exit; lib = 0; next }
    lib && /^\.Pq / && !libdone {
        n = split($0, w, /[ \t]+/); flags = ""
        for (i = 1; i < n; i++) if (w[i] == "Fl") flags = flags " -" w[i + 1]
        sub(/,$/, "", flags); print flags > libfile; libdone = 1; next
    }
    !syn { next }
    /^\.In / { printf "#include <%s>\n", $2; next }
    /^\.Bd -literal/ { lit = 1; next }
    /^\.Ed/ { lit = 0; if (st != "") { print "#error unterminated struct " st } next }
    lit {
        line = unroff($0)
        if (typed) {                  # chan_typed(3): name and T put in
            if (line ~ /^typedef struct name \{.*\} name;/) {   # as a struct of its own
                body = line; sub(/^[^{]*\{/, "", body); sub(/\}[^}]*$/, "", body)
                mm = member(body)
                printf "struct syn_page {%s};\n", body
                sa("sizeof(syn) == sizeof(struct syn_page)", "name: its size")
                sa("offsetof(syn, " mm ") == offsetof(struct syn_page, " mm ")", "name." mm)
                sa(same("__typeof__(((syn *)0)->" mm ")",
                        "__typeof__(((struct syn_page *)0)->" mm ")"), "name: the type of " mm)
                next
            }
            if (line !~ /\(.*\);/) next
            gsub(/name_/, "syn_", line); gsub(/name /, "syn ", line); gsub(/ T /, " int ", line)
            fn = line; sub(/\(.*/, "", fn); sub(/.*[ *]/, "", fn)
            printf "extern __typeof__(%s) %s;\n%s\n", fn, fn, line
            next
        }
        if (match(line, /^enum [A-Za-z_0-9]+ \{/)) {
            body = line; sub(/.*\{/, "", body); sub(/\}.*/, "", body)
            n = split(body, e, /,/)
            for (i = 1; i <= n; i++) {
                split(e[i], kv, /=/); k = kv[1]; v = kv[2]
                gsub(/[ \t]/, "", k); gsub(/[ \t]/, "", v)
                sa(k " == " v, k " = " v)
            }
            next
        }
        if (match(line, /^struct [A-Za-z_0-9]+ \{/)) {
            st = line; sub(/^struct /, "", st); sub(/ .*/, "", st); nm = 0
            print "struct syn_" st " {"; next
        }
        if (st != "" && line ~ /^\};/) {
            print "};"
            h = "struct " st; p = "struct syn_" st
            sa("sizeof(" h ") == sizeof(" p ")", h ": its size")
            for (i = 1; i <= nm; i++) {
                sa("offsetof(" h ", " m[i] ") == offsetof(" p ", " m[i] ")",
                   h ": the offset of " m[i])
                sa(same("__typeof__(((" h " *)0)->" m[i] ")", "__typeof__(((" p " *)0)->" m[i] ")"),
                   h ": the type of " m[i])
            }
            st = ""; next
        }
        if (st != "") { if (line ~ /;/) { m[++nm] = member(line) } print line; next }
        next
    }
    /^\.Ft / { ft = unroff(substr($0, 5)); next }
    /^\.Fn / {
        n = args(unroff(substr($0, 5)), a); fn = a[1]
        if (fn == "CHAN_TYPED") {     # the macro itself; its block follows
            print "#ifndef CHAN_TYPED\n#error CHAN_TYPED is not defined\n#endif"
            print "CHAN_TYPED(syn, int);"; typed = 1; next
        }
        params = ""
        for (i = 2; i <= n; i++) params = params (i > 2 ? ", " : "") a[i]
        if (params == "") params = "void"
        if (ft ~ /^typedef /) { printf "%s %s(%s);\n", ft, fn, params; ft = ""; next }
        printf "extern __typeof__(%s) %s;\n%s %s(%s);\n", fn, fn, ft, fn, params
        if (ft !~ /inline/) print fn >> (libfile ".fns")
        ft = ""; next
    }
    /^\.Fd #define / {
        name = $3; val = $0; sub(/^\.Fd #define [A-Za-z_0-9]+[ \t]*/, "", val)
        printf "#ifndef %s\n#error %s is not defined\n#endif\n", name, name
        if (val != "") sa("(" name ") == (" val ")", name " is " val)
        next
    }
    ' "$page" > "$c.body"
    { echo '#include <stddef.h>'; cat "$c.body"; echo 'int main(void)'; echo '{'
      echo '    static void (*volatile fns[])(void) = {'
      if [ -f "$out/$base.lib.fns" ]; then
          sed 's/.*/        (void (*)(void))\&&,/' "$out/$base.lib.fns"
          nfn=$((nfn + $(wc -l < "$out/$base.lib.fns")))
      fi
      echo '        0};'; echo '    return fns[0] == 0;'; echo '}'; } > "$c"
    flags=$(cat "$out/$base.lib" 2>/dev/null || true)
    [ -n "$flags" ] || { echo "synopsis: $page: no library in its LIBRARY section"; fail=1; }
    # shellcheck disable=SC2086
    if ! gcc -std=gnu11 -Wall -Wextra -Werror -I. -Itime -Itrace -Isync -Iio -Isched \
        -o "$out/$base.bin" "$c" -L"$libdir" $flags 2>"$out/$base.err"; then
        echo "synopsis: $page: its SYNOPSIS and LIBRARY differ from its header or library:"
        grep -E 'error|undefined' "$out/$base.err" | sed "s|$out/||" | head -8; fail=1
    fi
    npages=$((npages + 1))
done
[ $fail = 0 ] || { echo "synopsis: FAILED (the C made of each page: $out/PAGE.c)"; exit 1; }
echo "synopsis: $npages pages: every function ($nfn linked as LIBRARY says), macro," \
     "structure and enumerator of their SYNOPSIS as their header declares it"
