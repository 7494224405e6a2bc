#!/bin/sh
# SPDX-License-Identifier: MIT
# test/standalone.sh - the repository stands alone for its users: no file refers to a document
# outside it (a contract or design file beside the tree) or to a tracker's items ("issue 5").
# What the code does is said in the code's own words, at each declaration and in the man pages.
set -eu
cd "$(dirname "$0")/.."
hits=$(git grep -n -I -i -E '\.\./shared|API\.md|\bissues? #?[0-9]+\b' -- . \
       ':!test/standalone.sh' ':!test/fuzz/corpus_*' ':!docs/play/traces' ':!docs/play/data' \
       ':!.ci' || true)
if [ -n "$hits" ]; then
    echo "$hits"
    echo "standalone: the lines above refer outside the repository"
    exit 1
fi
echo "standalone: no file refers to a document or tracker outside the repository"
