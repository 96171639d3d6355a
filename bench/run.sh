#!/usr/bin/env bash
# Benchmarks cetbox against native execution.
#
#   bench/run.sh [CETBOX-RUN-OPTIONS...]   e.g. bench/run.sh --cpu=x86-64
#   bench/run.sh --compare-shstk           shadow-stack overhead on the call-heavy workload
#   bench/run.sh --startup                 only the start-up figures (same columns)
#
# Builds each workload (gcc -O2 -static; CoreMark from tests/third_party/coremark, posix port,
# 30000 iterations of its performance run) and cetbox (release), runs every workload natively,
# under the translator with shadow stacks off and on, under the interpreter (shadow stacks on)
# and under qemu-x86_64 when installed, all in one run (best of 3 each; the interpreter once),
# and prints native seconds and each configuration's slowdown with their geometric means,
# then the start-up cost of dynamic /bin/true and `python3 -c pass` (with two more columns:
# the translator with its hot-block profile disabled, and with an empty one every run), then jq 1.6's
# `jq --run-tests` on its jq.test when Debian's jq 1.6 is installed, then the maximum resident
# set size of each program (one run each; needs GNU time as /usr/bin/time). Options given are added
# to every cetbox run. Environment: CETBOX_BENCH_RUNS (default 3), CETBOX_BENCH_INTERP_RUNS
# (default 1), CARGO_TARGET_DIR, CETBOX_BENCH_BIN (use this cetbox binary instead of building one), CETBOX_BENCH_MARCH (e.g.
# -march=x86-64-v3: build the workloads for that CPU level). The translator's hot-block profile
# (README, --no-translation-cache) is kept in $build/translation-cache unless
# CETBOX_TRANSLATION_CACHE says otherwise, so the figures do not depend on the user's cache;
# it is warm after the first run of each program.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
runs="${CETBOX_BENCH_RUNS:-3}"
target="${CARGO_TARGET_DIR:-$root/target}"
build="$target/bench"
workloads=(fib hash qsort nbody memstr coremark)
# Arguments of each workload: CoreMark's are its posix port's SEED_ARG seeds and iteration
# count (the makefile's PARAM1: the performance run's data set).
declare -A wargs=([coremark]="0x0 0x0 0x66 30000")
coremark_src="$root/tests/third_party/coremark"

compare_shstk=0
startup_only=0
extra=()
for a in "$@"; do
    case "$a" in
        --compare-shstk) compare_shstk=1 ;;
        --startup) startup_only=1 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) extra+=("$a") ;;
    esac
done

mkdir -p "$build"
export CETBOX_TRANSLATION_CACHE="${CETBOX_TRANSLATION_CACHE:-$build/translation-cache}"
if [ -n "${CETBOX_BENCH_BIN:-}" ]; then
    cetbox="$CETBOX_BENCH_BIN"
else
    echo "building cetbox (release)..." >&2
    (cd "$root" && cargo build --release -q -p cetbox)
    cetbox="$target/release/cetbox"
fi
[ -x "$cetbox" ] || { echo "cetbox binary not found at $cetbox" >&2; exit 1; }

for w in "${workloads[@]}"; do
    if [ "$w" = coremark ]; then
        # As its posix/core_portme.mak builds it (-O2, FLAGS_STR), static.
        (cd "$coremark_src" && gcc -O2 -static ${CETBOX_BENCH_MARCH:-} -Iposix -I. \
            -DFLAGS_STR="\"-O2 -static ${CETBOX_BENCH_MARCH:-}\"" -DPERFORMANCE_RUN=1 \
            core_list_join.c core_main.c core_matrix.c core_state.c core_util.c \
            posix/core_portme.c -o "$build/$w")
    else
        gcc -O2 -static ${CETBOX_BENCH_MARCH:-} -o "$build/$w" "$here/$w.c" -lm
    fi
done

# same_output A B : whether two output files are the same, CoreMark's timing lines (ticks,
# seconds, rate, and the verdicts that follow from its 10 s minimum) left out.
same_output() {
    local strip='^(Total ticks|Total time|Iterations/Sec|ERROR! Must execute|Errors detected|Correct operation|CoreMark 1.0 :)'
    cmp -s <(grep -Ev "$strip" "$1") <(grep -Ev "$strip" "$2")
}

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
        if [ -f "$outfile" ] && [ "$i" -gt 0 ] && ! same_output "$outfile" "$outfile.new"; then
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

# The columns: native, then each configuration as a ratio to native. The interpreter is slow,
# so it runs once (CETBOX_BENCH_INTERP_RUNS) unless told otherwise; qemu-user only if installed.
qemu="$(command -v qemu-x86_64 || true)"
names=(jit-off jit-on interp-on)
opts="${extra[*]+"${extra[*]}"}"
cmds=("$cetbox run --engine=jit --shstk=off $opts --" "$cetbox run --engine=jit --shstk=on $opts --"
      "$cetbox run --engine=interp --shstk=on $opts --")
[ -n "$qemu" ] && { names+=(qemu); cmds+=("$qemu"); }
interp_runs="${CETBOX_BENCH_INTERP_RUNS:-1}"

if [ "$startup_only" = 0 ]; then
printf '%-10s %10s' workload native_s
for n in "${names[@]}"; do printf ' %10s' "$n"; done
printf '\n'
declare -A logsum count
for w in "${workloads[@]}"; do
    # shellcheck disable=SC2086
    nat=$(best_of "$build/$w.native.out" "$build/$w" ${wargs[$w]:-})
    printf '%-10s %10.3f' "$w" "$nat"
    for i in "${!names[@]}"; do
        n=${names[$i]}
        save=$runs
        [ "$n" = interp-on ] && runs=$interp_runs
        # shellcheck disable=SC2086
        t=$(best_of "$build/$w.$n.out" ${cmds[$i]} "$build/$w" ${wargs[$w]:-})
        runs=$save
        if [ "$t" != nan ] && ! same_output "$build/$w.native.out" "$build/$w.$n.out"; then
            echo "warning: $w printed different output under $n" >&2
        fi
        r=$(ratio "$nat" "$t")
        if [ "$r" = nan ]; then
            printf ' %10s' nan
        else
            printf ' %9.1fx' "$r"
            logsum[$n]=$(calc "${logsum[$n]:-0} + log($r)")
            count[$n]=$(( ${count[$n]:-0} + 1 ))
        fi
    done
    printf '\n'
done
printf '%-10s %10s' geomean ""
for n in "${names[@]}"; do
    if [ "${count[$n]:-0}" -gt 0 ]; then
        printf ' %9.1fx' "$(calc "exp(${logsum[$n]} / ${count[$n]})")"
    else
        printf ' %10s' nan
    fi
done
printf '\n\n'
fi

# Start-up: a dynamically linked program that does nothing, and python3 when installed.
startup=("/bin/true")
# The distribution's python3 (a version manager's shim on PATH may be a shell script).
py=/usr/bin/python3
[ -x "$py" ] || py="$(command -v python3 || true)"
[ -n "$py" ] && startup+=("$py -c pass")
# Two more columns for start-up: shadow stacks off without the hot-block profile, and with an
# empty profile directory every run (the cold cost: what the first process pays for writing it).
cold_runs=0
cold_cache() {
    cold_runs=$((cold_runs + 1))
    # best_of runs in a subshell: its pid keeps the directories of two calls apart.
    CETBOX_TRANSLATION_CACHE="$build/cold-cache/$BASHPID.$cold_runs" "$@"
}
rm -rf "$build/cold-cache"
main_names=("${names[@]}")
main_cmds=("${cmds[@]}")
names+=(jit-nocache jit-cold)
cmds+=("$cetbox run --engine=jit --shstk=off --no-translation-cache $opts --"
       "cold_cache $cetbox run --engine=jit --shstk=off $opts --")
printf '%-22s %10s' start-up native_ms
for n in "${names[@]}"; do printf ' %10s' "$n"; done
printf '\n'
for prog in "${startup[@]}"; do
    save=$runs
    runs=$(( runs < 5 ? 5 : runs ))
    # shellcheck disable=SC2086
    nat=$(best_of "$build/startup.native.out" $prog)
    printf '%-22s %10.1f' "$(basename "${prog%% *}")${prog#"${prog%% *}"}" "$(calc "$nat * 1000")"
    for i in "${!names[@]}"; do
        # shellcheck disable=SC2086
        t=$(best_of "$build/startup.${names[$i]}.out" ${cmds[$i]} $prog)
        printf ' %9.1fx' "$(ratio "$nat" "$t")"
    done
    runs=$save
    printf '\n'
done
rm -rf "$build/cold-cache"
names=("${main_names[@]}")
cmds=("${main_cmds[@]}")

[ "$startup_only" = 1 ] && exit 0

# jq 1.6's own core test suite (tests/third_party/jq/tests/jq.test, 321 tests) with Debian's
# jq, when installed: native seconds and the translator's ratio (once each: it is long; the
# interpreter is left out), and the summary line must be the same.
jqtests="$root/tests/third_party/jq/tests"
if [ -x /usr/bin/jq ] && /usr/bin/jq --version 2>/dev/null | grep -q '^jq-1\.6'; then
    jqcmd=(/usr/bin/jq -L "$jqtests/modules" --run-tests "$jqtests/jq.test")
    save=$runs
    runs=1
    nat=$(best_of "$build/jq.native.out" "${jqcmd[@]}")
    # shellcheck disable=SC2086
    t=$(best_of "$build/jq.jit-on.out" ${cmds[1]} "${jqcmd[@]}")
    runs=$save
    printf '\n%-22s %10s %10s\n' "jq --run-tests" native_s jit-on
    printf '%-22s %10.2f %9.1fx\n' "jq.test (321)" "$nat" "$(ratio "$nat" "$t")"
    if [ "$(tail -n 1 "$build/jq.native.out")" != "$(tail -n 1 "$build/jq.jit-on.out")" ]; then
        echo "warning: jq's summary differs under cetbox" >&2
    fi
fi

# Memory: maximum RSS (GNU time's %M, KiB) natively and under each cetbox configuration, one
# run each, apart from the timed runs (so the timing has no wrapper process); the issue's
# target is at most native + 64 MiB.
gnutime=/usr/bin/time
if ! "$gnutime" -f %M -o /dev/null true 2>/dev/null; then
    echo "max RSS: skipped (GNU time not found at $gnutime)"
    exit 0
fi
# max_rss CMD... : the command's maximum RSS in MiB ("nan" if it fails).
max_rss() {
    local f="$build/rss.txt"
    if "$gnutime" -f %M -o "$f" "$@" >/dev/null 2>&1; then
        calc "$(tail -n 1 "$f") / 1024"
    else
        echo nan
    fi
}
printf '\n%-22s %10s' "max RSS (MiB)" native
for n in "${names[@]}"; do printf ' %10s' "$n"; done
printf ' %12s\n' "worst-native"
rss_progs=()
for w in "${workloads[@]}"; do rss_progs+=("$build/$w${wargs[$w]:+ ${wargs[$w]}}"); done
rss_progs+=("${startup[@]}")
for prog in "${rss_progs[@]}"; do
    # shellcheck disable=SC2086
    nat=$(max_rss $prog)
    printf '%-22s %10.1f' "$(basename "${prog%% *}")${prog#"${prog%% *}"}" "$nat"
    worst=0
    for i in "${!names[@]}"; do
        # The interpreter takes minutes on the workloads; its RSS is measured at start-up.
        if [ "${names[$i]}" = interp-on ] && [[ "$prog" == "$build/"* ]]; then
            printf ' %10s' -
            continue
        fi
        # shellcheck disable=SC2086
        r=$(max_rss ${cmds[$i]} $prog)
        if [ "$r" = nan ]; then printf ' %10s' nan; continue; fi
        printf ' %10.1f' "$r"
        [ "$(calc "(($r - $nat) > $worst)")" != "0.000000" ] && worst=$(calc "$r - $nat")
    done
    printf ' %+11.1f\n' "$worst"
done
