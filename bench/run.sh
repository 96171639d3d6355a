#!/usr/bin/env bash
# Benchmarks cetbox against native execution.
#
#   bench/run.sh [CETBOX-RUN-OPTIONS...]   e.g. bench/run.sh --shstk=on
#   bench/run.sh --compare-shstk           shadow-stack overhead on the call-heavy workload
#
# Builds each workload (gcc -O2 -static) and cetbox (release), runs every workload natively
# and under `cetbox run` (best of 3 each) and prints a table of seconds and slowdown ratios
# with their geometric mean. Environment: CETBOX_BENCH_RUNS (default 3), CARGO_TARGET_DIR,
# CETBOX_BENCH_BIN (use this cetbox binary instead of building one), CETBOX_BENCH_MARCH (e.g.
# -march=x86-64-v3: build the workloads for that CPU level).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
runs="${CETBOX_BENCH_RUNS:-3}"
target="${CARGO_TARGET_DIR:-$root/target}"
build="$target/bench"
workloads=(fib hash qsort nbody memstr)

compare_shstk=0
extra=()
for a in "$@"; do
    case "$a" in
        --compare-shstk) compare_shstk=1 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) extra+=("$a") ;;
    esac
done

mkdir -p "$build"
if [ -n "${CETBOX_BENCH_BIN:-}" ]; then
    cetbox="$CETBOX_BENCH_BIN"
else
    echo "building cetbox (release)..." >&2
    (cd "$root" && cargo build --release -q -p cetbox)
    cetbox="$target/release/cetbox"
fi
[ -x "$cetbox" ] || { echo "cetbox binary not found at $cetbox" >&2; exit 1; }

for w in "${workloads[@]}"; do
    gcc -O2 -static ${CETBOX_BENCH_MARCH:-} -o "$build/$w" "$here/$w.c" -lm
done

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }

# best_of OUTFILE CMD... : prints the best wall time in seconds over $runs runs ("nan" if a run
# fails) and leaves the program's output in OUTFILE.
best_of() {
    local outfile="$1" best="" t0 t1 dt
    shift
    for ((i = 0; i < runs; i++)); do
        t0=$(now)
        if ! "$@" >"$outfile.new" 2>&1; then
            echo "FAILED: $* -> $(head -c 300 "$outfile.new")" >&2
            echo "nan"
            return 0
        fi
        t1=$(now)
        dt=$(calc "$t1 - $t0")
        if [ -f "$outfile" ] && [ "$i" -gt 0 ] && ! cmp -s "$outfile" "$outfile.new"; then
            echo "output differs between runs of $*" >&2
        fi
        mv "$outfile.new" "$outfile"
        if [ -z "$best" ] || [ "$(calc "$dt < $best")" != "0.000000" ]; then best=$dt; fi
    done
    echo "$best"
}

ratio() { if [ "$1" = nan ] || [ "$2" = nan ]; then echo nan; else calc "$2 / $1"; fi; }

if [ "$compare_shstk" = 1 ]; then
    w=fib
    off=$(best_of "$build/$w.off.out" "$cetbox" run --shstk=off ${extra[@]+"${extra[@]}"} -- "$build/$w")
    on=$(best_of "$build/$w.on.out" "$cetbox" run --shstk=on ${extra[@]+"${extra[@]}"} -- "$build/$w")
    printf '%-10s %12s %12s %10s\n' workload shstk=off shstk=on overhead
    if [ "$off" = nan ] || [ "$on" = nan ]; then
        printf '%-10s %12s %12s %10s\n' "$w" "$off" "$on" nan
    else
        printf '%-10s %12.3f %12.3f %9.1f%%\n' "$w" "$off" "$on" "$(calc "($on / $off - 1) * 100")"
    fi
    exit 0
fi

printf '%-10s %12s %12s %10s\n' workload native_s cetbox_s slowdown
logsum=0
count=0
for w in "${workloads[@]}"; do
    nat=$(best_of "$build/$w.native.out" "$build/$w")
    emu=$(best_of "$build/$w.cetbox.out" "$cetbox" run ${extra[@]+"${extra[@]}"} -- "$build/$w")
    if [ "$emu" != nan ] && ! cmp -s "$build/$w.native.out" "$build/$w.cetbox.out"; then
        echo "warning: $w printed different output under cetbox" >&2
    fi
    r=$(ratio "$nat" "$emu")
    if [ "$r" = nan ]; then
        printf '%-10s %12.3f %12s %10s\n' "$w" "$nat" "$emu" nan
    else
        printf '%-10s %12.3f %12.3f %9.1fx\n' "$w" "$nat" "$emu" "$r"
        logsum=$(calc "$logsum + log($r)")
        count=$((count + 1))
    fi
done
if [ "$count" -gt 0 ]; then
    printf '%-10s %12s %12s %9.1fx\n' geomean "" "" "$(calc "exp($logsum / $count)")"
else
    printf '%-10s %12s %12s %10s\n' geomean "" "" nan
fi
