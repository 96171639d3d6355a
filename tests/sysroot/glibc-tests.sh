#!/usr/bin/env bash
# Runs glibc's own tests, through glibc's test harness, in the build tree that
# tests/sysroot/glibc-cet.sh keeps next to the CET sysroot: natively, or under cetbox with
# test-wrapper="cetbox run --" (glibc's documented hook for running tests through an emulator
# or on another machine; see glibc's INSTALL, "Testing").
#
#   tests/sysroot/glibc-tests.sh native|cetbox cet          # the CET and shadow-stack tests
#   tests/sysroot/glibc-tests.sh native|cetbox setjmp signal stdlib misc nptl   # whole dirs
#   tests/sysroot/glibc-tests.sh compare cet setjmp ...     # the table: native vs cetbox
#
# "cet" is every tst-cet-*, tst-shstk-* and tst-setjmp-cet test the x86 Makefiles define
# (glibc-cet-tests.awk), each run by `make test t=SUBDIR/NAME`, which gives it the environment
# its Makefile sets (NAME-ENV, e.g. GLIBC_TUNABLES=glibc.cpu.hwcaps=SHSTK). A directory runs
# as `make check subdirs=DIR`. Results (glibc's PASS/FAIL/UNSUPPORTED/XFAIL lines) go to
# $cache/results/MODE-LIST.sum; `compare` prints a Markdown table of both modes and lists the
# tests whose results differ.
#
# Environment: CETBOX (the cetbox binary; default target/release/cetbox of this checkout),
# CETBOX_GLIBC_JOBS (make -j, default nproc), TIMEOUTFACTOR (glibc's test timeouts are
# multiplied by it; default 1 natively, 30 under cetbox, which runs code ~35x slower).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${CETBOX_GLIBC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cetbox/glibc-2.41-cet}"
build="$cache/build"
tree="$(ls -d "$cache"/src/glibc-[0-9]* 2>/dev/null | head -1)"
results="$cache/results"
jobs="${CETBOX_GLIBC_JOBS:-$(nproc)}"

say() { printf 'glibc-tests.sh: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

[ $# -ge 2 ] || die "usage: $0 native|cetbox|compare cet|SUBDIR..."
mode="$1"
shift
[ -f "$build/.cetbox-built" ] && [ -n "$tree" ] ||
    die "NOT RUN: no glibc build tree at $build (run tests/sysroot/glibc-cet.sh first)"
mkdir -p "$results"
# One make at a time in the build tree (crates/cli/tests/glibc_harness.rs takes the same lock).
if [ "$mode" != compare ]; then
    exec 8>"$build/.cetbox-test-lock"
    flock 8 || die "cannot lock $build/.cetbox-test-lock"
fi

cet_tests() {
    for f in sysdeps/x86/Makefile sysdeps/x86_64/Makefile sysdeps/unix/sysv/linux/x86_64/Makefile; do
        [ -f "$tree/$f" ] && awk -f "$here/glibc-cet-tests.awk" "$tree/$f"
    done
}

wrapper=()
case "$mode" in
native)
    export TIMEOUTFACTOR="${TIMEOUTFACTOR:-1}"
    ;;
cetbox)
    cetbox="${CETBOX:-$repo/target/release/cetbox}"
    [ -x "$cetbox" ] || die "no cetbox binary at $cetbox (cargo build --release)"
    export TIMEOUTFACTOR="${TIMEOUTFACTOR:-30}"
    wrapper=("test-wrapper=$cetbox run --")
    ;;
compare) ;;
*) die "unknown mode $mode" ;;
esac

# One test's result line from its .test-result file (glibc's scripts/evaluate-test.sh).
result_of() {
    local f="$build/$1.test-result"
    if [ -f "$f" ]; then
        head -1 "$f"
    else
        # No result file: the test did not build, or make stopped (glibc says UNRESOLVED).
        echo "UNRESOLVED: $1"
    fi
}

run_list() {
    local list="$1" out="$results/$mode-$1.sum" start=$(date +%s)
    : >"$out"
    if [ "$list" = cet ]; then
        for t in $(cet_tests); do
            rm -f "$build/$t.out" "$build/$t.test-result"
            (cd "$build" && nice -n 10 make -s test t="$t" "${wrapper[@]}" >"$build/$t.make.log" 2>&1) || true
            result_of "$t" | tee -a "$out" >&2
        done
    else
        rm -f "$build/$list"/*.test-result "$build/$list"/*.out "$build/$list"/subdir-tests.sum
        (cd "$build" && nice -n 10 make -j"$jobs" -k check subdirs="$list" "${wrapper[@]}" \
            >"$results/$mode-$list.log" 2>&1) || true
        for f in "$build/$list"/*.test-result; do
            [ -f "$f" ] && head -1 "$f"
        done | sort >"$out"
    fi
    say "$mode $list: $(cut -d: -f1 "$out" | sort | uniq -c | tr '\n' ' ')in $(($(date +%s) - start)) s"
}

compare_list() {
    local list="$1" n="$results/native-$1.sum" c="$results/cetbox-$1.sum"
    [ -f "$n" ] && [ -f "$c" ] || die "run both native and cetbox for $list first"
    echo "| test | native | cetbox |"
    echo "|---|---|---|"
    join -t'|' -a1 -a2 -e 'NOT RUN' -o 0,1.2,2.2 \
        <(sed -E 's/^([A-Z]+): (.*)$/\2|\1/' "$n" | sort -t'|' -k1,1) \
        <(sed -E 's/^([A-Z]+): (.*)$/\2|\1/' "$c" | sort -t'|' -k1,1) |
        awk -F'|' '{ printf "| %s | %s | %s%s |\n", $1, $2, $3, ($2 != $3 ? " (differs)" : "") }'
}

for list in "$@"; do
    case "$mode" in
    compare) compare_list "$list" ;;
    *) run_list "$list" ;;
    esac
done
