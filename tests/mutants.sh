#!/usr/bin/env bash
# Mutation testing: does the test suite notice a mistake?
#
#   tests/mutants.sh [LIST]        (make mutants; LIST: tests/mutants.list)
#
# Each mutant of LIST is one small edit a person could make by mistake: a
# file, a text that occurs exactly once in it, its replacement and why.
# The script copies the source tree to a scratch directory (never touching
# yours), configures and builds it once, checks that the suite passes
# there, then for each mutant: applies it, rebuilds what changed, runs the
# suites of the file's area one by one with a time limit, stopping at the
# first failing test (then every other suite, one by one, dist last, if they
# all pass, unless the mutant is marked equivalent: its area's suites are
# enough to show that the mark still holds), and restores the file. A mutant is
# killed when the suite fails (or does not finish in time); it survives
# when the suite passes. It prints
#     mutants: K killed of N
# (N: the mutants not marked equivalent), the survivors, and exits 1 unless
# every one of them is killed. A mutant whose text is no longer in its file
# (or is there more than once) is an error, "stale mutant": the code has
# changed and the list must follow it. So is one that does not compile.
# A mutant with "first: SUITE/CASE" (a suite of tests/main.c and one of its
# Check test cases: the one that killed it before) runs that case alone
# before anything else, so that a kill costs the build and one case; when
# the case passes, the mutant goes on as any other (its area, then the
# rest), so the mark only changes the time, never a verdict. A mark that
# names no test case is an error, "stale first". A killed mutant's line
# names the suite and case that killed it: the mark to write.
# A mutant with "needs: FLAG..." (flags of /proc/cpuinfo, e.g. avx512f)
# changes code that only a CPU with those instructions runs: on a CPU
# without one of them it is still applied and compiled, then reported as
# "not run" (counted apart, neither killed nor survived); such a mutant
# needs a test that kills it on a CPU that has them.
#
# Environment: MUTANTS_ONLY=REGEX runs only the mutants whose file, why or
# find text matches; MUTANTS_KEEP=1 keeps the scratch directory;
# MUTANTS_JOBS=N for make -j (default 2); MUTANTS_SHARDS=N runs N copies of
# this script at once, each in its own scratch tree with every N-th mutant
# (make -j1 each), and prints their reports one after the other and the
# sum (make mutants: 2; while one copy compiles a mutant the other runs
# tests); PARLSTM_MPIRUN, the MPI launcher for the dist suite's jobs (make
# mutants sets it; without it they skip).
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
list=${1:-$src/tests/mutants.list}
jobs=${MUTANTS_JOBS:-2}
only=${MUTANTS_ONLY:-}
[ -f "$list" ] || { echo "mutants: no list $list" >&2; exit 2; }
[ -x "$src/configure" ] || { echo "mutants: run ./bootstrap.sh first (no configure)" >&2; exit 2; }

# the report's note on the mutants not counted in "K killed of N"
summary_note() {
    [ "$equivalent" -gt 0 ] && printf ' (%s more marked equivalent)' "$equivalent"
    [ "$notrun" -gt 0 ] && printf ' (%s more not run: this CPU lacks what they need)' "$notrun"
    return 0
}

# ---- shards: this script N times, mutant i in copy i mod N
shards=${MUTANTS_SHARDS:-1}
shard=${MUTANTS_SHARD:-}
if [ -z "$shard" ] && [ "$shards" -gt 1 ]; then
    start=$(date +%s)
    out=$(mktemp -d "${TMPDIR:-/tmp}/parlstm-mutants-shards.XXXXXX")
    trap 'rm -rf "$out"' EXIT
    pids=""
    for k in $(seq 0 $((shards - 1))); do
        MUTANTS_SHARD="$k/$shards" MUTANTS_JOBS=1 bash "$0" "$list" >"$out/$k" 2>&1 &
        pids="$pids $!"
    done
    rc=0
    for p in $pids; do
        wait "$p" || rc=1
    done
    killed=0 total=0 equivalent=0 notrun=0
    for k in $(seq 0 $((shards - 1))); do
        echo "---- shard $((k + 1)) of $shards"
        cat "$out/$k"
        line=$(grep -E '^mutants: [0-9]+ killed of [0-9]+' "$out/$k" | tail -1)
        [ -n "$line" ] || rc=1
        set -- $line
        killed=$((killed + ${2:-0}))
        total=$((total + ${5:-0}))
        e=$(printf '%s\n' "$line" | sed -n 's/.*(\([0-9]*\) more marked equivalent).*/\1/p')
        equivalent=$((equivalent + ${e:-0}))
        n=$(printf '%s\n' "$line" | sed -n 's/.*(\([0-9]*\) more not run:.*/\1/p')
        notrun=$((notrun + ${n:-0}))
    done
    note=$(summary_note)
    echo
    echo "mutants: $killed killed of $total$note in $(($(date +%s) - start))s, $shards shards"
    [ "$rc" = 0 ] && [ "$killed" = "$total" ]
    exit $?
fi
shard_k=${shard%/*}
shard_n=${shard#*/}
[ -n "$shard" ] || { shard_k=0; shard_n=1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/parlstm-mutants.XXXXXX")
tree=$work/tree
if [ "${MUTANTS_KEEP:-0}" = 1 ]; then
    echo "mutants: scratch tree in $tree"
else
    trap 'rm -rf "$work"' EXIT
fi
start=$(date +%s)

# ---- the scratch tree: sources and the generated build system, no outputs
mkdir -p "$tree"
tar -C "$src" --exclude=./.git --exclude=./data/mnist --exclude='*.o' --exclude='*.a' \
    --exclude=.deps --exclude=.dirstamp --exclude='*.log' --exclude='*.trs' \
    --exclude=./tests/fuzz/work --exclude=./tests/fuzz/artifacts --exclude=./parlstm \
    --exclude=./tests/check_parlstm --exclude=./tests/fuzz/fuzz_idx \
    --exclude=./tests/fuzz/fuzz_checkpoint --exclude=./tests/fuzz/fuzz_npy \
    --exclude=./tests/fuzz/fuzz_ts --exclude=./tests/fuzz/lib --exclude=./bench/compare-onednn \
    --exclude=./config.status --exclude=./Makefile --exclude=./config.h \
    -cf - . | tar -C "$tree" -xf - || exit 2
# (static only: libtool then compiles each file once, not also for a shared
# library that neither program needs; a kernels_vec.h mutant builds in
# 0.64x the time)
if ! (cd "$tree" && ./configure -q --without-onednn --disable-shared >"$work/configure.log" 2>&1 &&
      make -s -j"$jobs" parlstm tests/check_parlstm >"$work/build.log" 2>&1); then
    echo "mutants: the unchanged tree does not build:" >&2
    tail -20 "$work/configure.log" "$work/build.log" >&2
    exit 2
fi

# Runs the suite; its exit status, 124 (or 137) when it ran out of time.
# The temporary directories of the tests that fail go with the scratch.
# Check logs each test as it ends (CK_LOG_FILE_NAME): the first failure
# or error there stops the run (143), since one is enough to kill a
# mutant; "$work/ck.log" then holds it. With $3 = all, the suite runs to
# its end (the unchanged tree's run).
mkdir -p "$work/tmp"
ck_failed='^[^ ]+:[0-9]+:[FE]:' # a failure or error line of Check's log
# $2, when given, names the suites to run (PARLSTM_TEST_SUITES, tests/main.c);
# $ck_case, when set, the one test case of them to run (CK_RUN_CASE: set
# and empty, Check would run none).
ck_case=""
run_suite() {
    rm -f "$work/ck.log"
    (cd "$tree" && if [ -n "$ck_case" ]; then export CK_RUN_CASE="$ck_case"; fi &&
        TMPDIR="$work/tmp" PARLSTM_BIN="$tree/parlstm" PARLSTM_SRCDIR="$tree" \
        PARLSTM_TEST_SUITES="${2:-}" CK_LOG_FILE_NAME="$work/ck.log" \
        exec timeout -k 5 "$1" tests/check_parlstm </dev/null >"$work/out" 2>&1 9>"$work/summary") &
    local pid=$! # timeout's: a TERM reaches the suite's processes through it
    while [ "${3:-}" != all ] && kill -0 "$pid" 2>/dev/null; do
        if grep -qE "$ck_failed" "$work/ck.log" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null
            break
        fi
        sleep 0.2
    done
    wait "$pid"
}

# The suites that test a source file's area (those that killed its
# mutants in a whole-suite run), in the order that kills them soonest
# (src/cli/train.c: reliability before cli, which is slower to run:
# its 34 mutants 722 s against 766 with cli first, one run each, 2 shards):
# a mutant runs them first and the whole suite only when they pass,
# so that it is never called a survivor without the whole suite having
# seen it. A killed mutant's line ends with its seconds (build and suites):
# which areas cost the run its time.
area_of() {
    case "$1" in
    src/bf16.c | src/kernels_bf16.c) echo "bf16 lstm reliability" ;;
    src/gemm.c | src/kernels*.c | src/kernels_vec.h | src/vec_*.h | src/cell.c | src/peak.c) echo "gemm optim" ;;
    src/cpu.c | src/common.h) echo "lstm parallel" ;;
    src/lstm.c | src/lstm_ref.c) echo "lstm parallel" ;;
    src/model.c) echo "lstm parallel train" ;;
    src/trainer.c | src/pool.c) echo "parallel" ;;
    src/step.c) echo "parallel optim reliability dist" ;;
    src/reduce.c) echo "parallel dist" ;;
    src/evaluate.c) echo "train tools" ;;
    src/optim.c | src/rng.c) echo "optim" ;;
    src/idx.c | src/image.c) echo "idx cli image" ;;
    src/dataset.c) echo "idx series cli image" ;;
    src/npy.c | src/tsfile.c | src/series.c | src/series.h) echo "series" ;;
    src/normalize.c) echo "series cli" ;;
    src/checkpoint.c) echo "reliability cli series" ;;
    src/file.c) echo "train reliability" ;;
    src/modelfile.c | src/modelinfo.c | src/modelformat.c) echo "cli train tools" ;;
    src/safetensors.c) echo "safetensors tools" ;;
    src/dist.c | src/cli/ranks.c) echo "dist" ;;
    src/cli/train.c) echo "reliability tools cli dist" ;;
    src/cli/eval.c) echo "cli tools" ;;
    src/cli/plot.c | src/cli/predict.c | src/cli/trainlog.c | src/cli/convert.c) echo "tools" ;;
    src/cli/testhooks.c) echo "reliability" ;;
    src/cli/*) echo "cli" ;;
    *) echo "" ;; # the other headers: the whole suite
    esac
}

# Every suite of the runner (tests/main.c's table), dist last (its MPI
# jobs take the longest); the suites of $1 left out.
suites_but() {
    local s
    for s in $(grep -o '{"[a-z]*", [a-z]*_suite}' "$tree/tests/main.c" | cut -d'"' -f2 |
        grep -vx dist) dist; do
        case " $1 " in *" $s "*) ;; *) printf '%s ' "$s" ;; esac
    done
}
[ "$(suites_but "" | wc -w)" -ge 10 ] || { echo "mutants: no suite table in tests/main.c" >&2; exit 2; }

# The suites of $2 one by one, as run_suite with limit $1: the status of
# the first that fails (its name in $failed_in), else 0.
failed_in=""
run_suites() {
    local s
    for s in $2; do
        failed_in=$s
        run_suite "$1" "$s" || return $?
    done
}

# The test case of mark $1 (SUITE/CASE) alone, as run_suite with limit $2:
# its status; 3 when there is no such suite, or no such case in it (no
# check ran).
run_first() {
    failed_in=${1%%/*}
    ck_case=${1#*/}
    run_suite "$2" "$failed_in"
    local rc=$?
    ck_case=""
    if grep -q '^PARLSTM_TEST_SUITES: no suite' "$work/out" ||
        { [ $rc = 0 ] && ! grep -qE 'Checks: [1-9]' "$work/summary"; }; then
        return 3
    fi
    return $rc
}

t0=$(date +%s)
if ! run_suite 900 "" all; then
    echo "mutants: the suite fails without any mutant:" >&2
    cat "$work/summary" >&2
    exit 2
fi
base=$(($(date +%s) - t0))
limit=$((base * 10 > 60 ? base * 10 : 60))
echo "mutants: the unchanged suite passes in ${base}s; each mutant gets ${limit}s"

# The number of times $M_FIND occurs in file $1; the edited text to $2.
apply() {
    M_FIND=$find M_REPL=$replace awk '
        BEGIN { f = ENVIRON["M_FIND"]; r = ENVIRON["M_REPL"]; n = 0 }
        { line = $0; out = ""
          while ((i = index(line, f)) > 0) {
              n++; out = out substr(line, 1, i - 1) r; line = substr(line, i + length(f))
          }
          print out line }
        END { print n > "/dev/stderr" }' "$1" >"$2" 2>"$work/count"
    cat "$work/count"
}

total=0 killed=0 equivalent=0 notrun=0 errors=0
survivors="" problems=""
record=0

one_mutant() {
    record=$((record + 1))
    [ $(((record - 1) % shard_n)) = "$shard_k" ] || return 0 # another shard's
    local where="$list:$line0"
    if [ -z "$file" ] || [ -z "$find" ] || [ -z "$why" ] || [ "$have_replace" = 0 ]; then
        problems+="  $where: a mutant needs file, find, replace and why"$'\n'
        errors=$((errors + 1))
        return
    fi
    if [ -n "$only" ] && ! printf '%s\n%s\n%s\n' "$file" "$why" "$find" | grep -Eq -- "$only"; then
        return
    fi
    local target="$tree/$file"
    if [ ! -f "$target" ]; then
        problems+="  stale mutant ($where): no file $file"$'\n'
        errors=$((errors + 1))
        return
    fi
    cp -p "$target" "$work/orig"
    local n
    n=$(apply "$work/orig" "$work/mutated")
    if [ "$n" != 1 ]; then
        problems+="  stale mutant ($where): '$find' occurs $n times in $file (expected once)"$'\n'
        errors=$((errors + 1))
        return
    fi
    cp "$work/mutated" "$target"
    local verdict what="" lacks="" flag m_t0 rc=0 killer=""
    m_t0=$(date +%s)
    for flag in $needs; do
        grep -qw -- "$flag" /proc/cpuinfo || lacks="$lacks $flag"
    done
    if ! (cd "$tree" && make -s -j"$jobs" parlstm tests/check_parlstm >"$work/build.log" 2>&1); then
        verdict=broken
    elif [ -n "$lacks" ]; then
        verdict=notrun
    elif [ -n "$first" ] && { run_first "$first" "$limit"; rc=$?; [ $rc != 0 ]; }; then
        verdict=killed
        [ $rc != 3 ] || verdict=stale
    elif area=$(area_of "$file") && run_suites "$limit" "$area" &&
        { { [ -n "$equiv" ] && [ -n "$area" ]; } || run_suites "$limit" "$(suites_but "$area")"; }; then
        verdict=survived
    else
        rc=$? # the suite's
        verdict=killed
    fi
    if [ "$verdict" = killed ]; then
        local failure # Check's log line of the first failure, if any
        failure=$(grep -m1 -E "$ck_failed" "$work/ck.log" 2>/dev/null)
        if [ $rc = 124 ] || [ $rc = 137 ]; then
            what="(time limit)"
        else
            what=$(grep -m1 -E '^[^ ]+:[0-9]+:' "$work/summary" | cut -c1-110)
            [ -n "$what" ] || # stopped at its first failure: the log has it
                what=$(printf '%s\n' "$failure" | cut -c1-110)
        fi
        # the case that failed (field 4 of that line): the mark
        killer=$(printf '%s\n' "$failure" | cut -d: -f4)
        [ -z "$killer" ] || killer="first: $failed_in/$killer"
    fi
    cp "$work/orig" "$target" # a new mtime: the next build restores it
    if [ "$verdict" = broken ]; then
        problems+="  $where: the mutant does not compile ($file: $why)"$'\n'
        errors=$((errors + 1))
        printf 'BROKEN    %s: %s\n' "$file" "$why"
        return
    fi
    if [ "$verdict" = stale ]; then
        problems+="  stale first ($where): suite/case '$first' runs no test"$'\n'
        errors=$((errors + 1))
        printf 'STALE     %s: %s (first: %s runs no test)\n' "$file" "$why" "$first"
        return
    fi
    if [ "$verdict" = notrun ]; then
        notrun=$((notrun + 1))
        printf 'NOT RUN   %s: %s (this CPU lacks%s)\n' "$file" "$why" "$lacks"
        return
    fi
    if [ -n "$equiv" ]; then
        equivalent=$((equivalent + 1))
        if [ "$verdict" = killed ]; then
            problems+="  $where: marked equivalent, but $what kills it: drop the mark"$'\n'
            errors=$((errors + 1))
        fi
        printf 'EQUIV     %s: %s (%s)\n' "$file" "$why" "$equiv"
        return
    fi
    total=$((total + 1))
    if [ "$verdict" = killed ]; then
        killed=$((killed + 1))
        printf 'killed    %s: %s  [%s] (%s) %ss\n' "$file" "$why" "$what" "$killer" \
            $(($(date +%s) - m_t0))
    else
        survivors+="  $file: $why"$'\n'"      find:    $find"$'\n'"      replace: $replace"$'\n'
        printf 'SURVIVED  %s: %s\n' "$file" "$why"
    fi
}

# The list: records of "key: value" lines, separated by blank lines;
# '#' starts a comment line.
reset() { file="" find="" replace="" why="" equiv="" needs="" first="" have_replace=0 line0=$lineno; }
lineno=0
reset
# (the list on descriptor 3: nothing a mutant runs, mpirun included, can
# read it away from the loop)
while IFS= read -r -u 3 l || [ -n "$l" ]; do
    lineno=$((lineno + 1))
    case "$l" in
    '#'*) continue ;;
    '')
        [ -n "$file$find$why" ] && one_mutant
        reset
        continue
        ;;
    esac
    [ -z "$file$find$why$equiv$needs" ] && [ "$have_replace" = 0 ] && line0=$lineno
    key=${l%%:*}
    value=${l#*:}
    value=${value# }
    case "$key" in
    file) file=$value ;;
    find) find=$value ;;
    replace) replace=$value; have_replace=1 ;;
    why) why=$value ;;
    equivalent) equiv=$value ;;
    needs) needs=$value ;;
    first) first=$value ;;
    *)
        problems+="  $list:$lineno: unknown key '$key'"$'\n'
        errors=$((errors + 1))
        ;;
    esac
done 3<"$list"
[ -n "$file$find$why" ] && one_mutant
# every record of the list seen (a loop that stopped early must not pass)
if [ "$record" != "$(grep -c '^file:' "$list")" ]; then
    problems+="  the run saw $record of the list's $(grep -c '^file:' "$list") mutants"$'\n'
    errors=$((errors + 1))
fi

echo
note=$(summary_note)
echo "mutants: $killed killed of $total$note in $(($(date +%s) - start))s"
if [ -n "$survivors" ]; then
    echo "survivors (each needs a test that kills it, or a reason why it is equivalent):"
    printf '%s' "$survivors"
fi
if [ -n "$problems" ]; then
    echo "errors in the list ($errors):"
    printf '%s' "$problems"
fi
[ "$killed" = "$total" ] && [ "$errors" = 0 ] && [ "$total" -gt 0 ]
