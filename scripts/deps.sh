#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the Debian packages that libchan's build, tests, demo and benchmarks need, and only
# those that are missing: a no-op when everything is there. Needs root only when something is
# missing. Usage: scripts/deps.sh [--list] [group...]   groups: build test bench docs model play
# (default: build test); --list prints the groups' packages and installs nothing
# (test/deps.sh checks that they hold every tool make test calls).
set -eu

list=false
[ "${1:-}" = --list ] && { list=true; shift; }
groups=${*:-build test}
pkgs=""
for g in $groups; do
    case $g in
    build) pkgs="$pkgs gcc make pkg-config liburcu-dev libhwloc-dev" ;;
    test)  pkgs="$pkgs check libsubunit-dev clang libclang-rt-14-dev g++ cmake clang-format"
           pkgs="$pkgs python3" ;;
    bench) pkgs="$pkgs hwloc golang-go cargo librust-crossbeam-channel-dev gnuplot-nox python3" ;;
    docs)  pkgs="$pkgs mandoc man-db" ;;
    model) pkgs="$pkgs spin" ;;
    play)  pkgs="$pkgs chromium chromium-driver python3-selenium mandoc" ;;
    *) echo "deps.sh: unknown group '$g' (build test bench docs model play)" >&2; exit 2 ;;
    esac
done

if $list; then echo $pkgs | tr ' ' '\n' | sort -u; exit 0; fi

missing=""
for p in $pkgs; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: these Debian packages are missing:$missing" >&2
    echo "deps.sh: run as root (or: sudo apt-get install$missing), then try again." >&2
    exit 1
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
