#!/bin/sh
# SPDX-License-Identifier: MIT
# test/standalone.sh - the repository stands alone for its users: no file refers to a document
# outside it (a contract or design file beside the tree) or to a tracker's items ("issue 5").
# What the code does is said in the code's own words, at each declaration and in the man pages.
set -eu
cd "$(dirname "$0")/.."
pattern='\.\./shared|API\.md|\bissues? #?[0-9]+\b'
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    hits=$(git grep -n -I -i -E "$pattern" -- . ':!test/standalone.sh' ':!test/fuzz/corpus_*' \
           ':!docs/play/traces' ':!docs/play/data' ':!.ci' || true)
else # not a checkout (a copy, an unpacked archive): the same files, found by find
    [ -f chan.h ] || { echo "standalone: not at the top of the tree"; exit 1; }
    hits=$(find . \( -name .git -o -path ./build -o -path ./dist -o -path './test/fuzz/corpus_*' \
           -o -path ./docs/play/traces -o -path ./docs/play/data -o -path ./.ci \) -prune -o \
           -type f ! -path ./test/standalone.sh -print | sed 's|^\./||' | sort |
           xargs grep -n -I -i -E "$pattern" /dev/null || true)
fi
if [ -n "$hits" ]; then
    echo "$hits"
    echo "standalone: the lines above refer outside the repository"
    exit 1
fi
echo "standalone: no file refers to a document or tracker outside the repository"
