#!/bin/sh
# SPDX-License-Identifier: MIT
# test/standalone.sh - the repository stands alone for its users: no file refers to a document
# outside it (a contract or design file beside the tree), to a tracker's items ("issue 5"), or
# to a web address. What the code does is said in the code's own words, at each declaration and
# in the man pages; a document of others is named in words ("The Go Memory Model"), not linked.
set -eu
cd "$(dirname "$0")/.."
# search BAD: the lines of the tree's files that match the extended regular expression BAD, as
# file:line:text; in a checkout through git grep, elsewhere (a copy, an unpacked archive) the same
# files found by find.
search() {
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git grep -n -I -i -E "$1" -- . ':!test/standalone.sh' ':!test/fuzz/corpus_*' \
            ':!docs/play/traces' ':!docs/play/data' ':!.ci' || true
    else
        [ -f chan.h ] || { echo "standalone: not at the top of the tree" >&2; exit 1; }
        find . \( -name .git -o -path ./build -o -path ./dist -o -path './test/fuzz/corpus_*' \
            -o -path ./docs/play/traces -o -path ./docs/play/data -o -path ./.ci \) -prune -o \
            -type f ! -path ./test/standalone.sh -print | sed 's|^\./||' | sort |
            xargs grep -n -I -i -E "$1" /dev/null || true
    fi
}

# refuse WHAT BAD [ALLOWED]: fail on the lines that match BAD once every match of ALLOWED is
# taken out of them.
refuse() {
    hits=$(search "$2" | sed -E "s#${3:-^\$^}##gI" | grep -i -E "$2" || true)
    if [ -n "$hits" ]; then
        echo "$hits"
        echo "standalone: the lines above refer to $1 outside the repository"
        exit 1
    fi
}

refuse "a document or tracker" '\.\./shared|API\.md|\bissues? #?[0-9]+\b'
# A URL, or a bare web address: a host with a path (go.dev/ref/mem) or a web site's host
# (ui.perfetto.dev). Allowed: the SVG namespace (a name XML requires, never fetched), the play
# server's own 127.0.0.1 and localhost, and a Go import path under golang.org/x/, which names
# the package whose design a piece follows (golang.org/x/sync/errgroup); a registry named as
# such (crates.io, with no path) is a name too.
host='\b[a-z0-9-]+(\.[a-z0-9-]+)*'
refuse "a web address" "https?://|$host\\.(dev|com|org|net|io|edu|gov)/|$host\\.(dev|com)\\b" \
    'https?://(127\.0\.0\.1|localhost)[:/]|http://www\.w3\.org/2000/svg|\bgolang\.org/x/'
echo "standalone: no file refers to a document, tracker or web address outside the repository"
