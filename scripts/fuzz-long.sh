#!/usr/bin/env bash
# fuzz-long.sh [CPU_SECONDS] [TARGET...]: the long fuzzing runs, done locally
# (not in CI). Each target (default: all of them) is fuzzed in 15-minute
# slices (the last one only as long as it needs) until the CPU time spent on
# it, summed over every run of this script, reaches CPU_SECONDS (default 3600,
# one CPU-hour). Work is kept between runs in build-fuzz-long/ (its -O2 clang
# build, the growing corpora), and the CPU
# seconds per target are counted in fuzz/long-runs.tsv, which is committed, so
# the script may be stopped and started again, on another machine too.
# Several instances may run at once on different targets.
# After each slice the corpus is merged (libFuzzer -merge=1: only inputs that
# add coverage) into fuzz/corpus/<target>, and a line goes to
# fuzz/long-runs.tsv: date, target, CPU seconds of the slice, total so far,
# final coverage (edges), features, corpus size, result. A crash, leak,
# timeout or out-of-memory stops the script with the reproducer's path.
# Run it niced (`nice -n 19 bash scripts/fuzz-long.sh`) to soak idle CPU.
# To stop it cleanly, `touch <work dir>/stop` (build-fuzz-long/stop, or
# $FUZZ_LONG_DIR/stop): every instance using that work dir ends after the
# slice in hand, which is still counted and merged. A new run removes the file.
# Do not pause it with SIGSTOP: libFuzzer's per-input timeout is wall-clock,
# so the input in hand when it resumes is reported as a timeout.
set -euo pipefail
quota=${1:-3600}
shift || true
top=$(cd "$(dirname "$0")/.." && pwd)
work=${FUZZ_LONG_DIR:-$top/build-fuzz-long}
b=$work/build
mkdir -p "$work"
rm -f "$work/stop"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
CC=clang CXX=clang++ cmake -S "$top" -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only" \
  -DAMBIENT_BUILD_FUZZ=ON -DAMBIENT_WERROR=OFF -DAMBIENT_BUILD_TESTS=OFF -DAMBIENT_BUILD_BENCH=OFF \
  -DAMBIENT_BUILD_EXAMPLES=OFF "${launcher[@]}" >/dev/null
all=$(cd "$top/fuzz" && grep -ho 'ambient_add_fuzzer(fuzz_[a-z0-9_]*' */CMakeLists.txt | sed 's/ambient_add_fuzzer(//')
targets=${*:-$all}
# shellcheck disable=SC2086
cmake --build "$b" -j"$(nproc)" --target $targets >"$work/build.log" 2>&1 || {
  tail -30 "$work/build.log"; exit 1; }
tsv=$top/fuzz/long-runs.tsv
[ -s "$tsv" ] || printf 'date\ttarget\tcpu_s\ttotal_cpu_s\tcov\tft\tcorpus\tresult\n' >"$tsv"
# spent NAME: CPU seconds NAME has had so far (the running total of its last row)
spent() { awk -F'\t' -v n="$1" '$2==n{s=$4}END{printf "%d", s}' "$tsv"; }
for name in $targets; do
  f=$(find "$b/fuzz" -type f -name "$name" | head -1)
  corpus=$work/corpus/$name
  mkdir -p "$corpus" "$work/crashes/$name"
  [ -d "$top/fuzz/corpus/$name" ] && cp -rn "$top/fuzz/corpus/$name/." "$corpus/"
  while used=$(spent "$name"); [ "$used" -lt "$quota" ]; do
    if [ -e "$work/stop" ]; then
      echo "fuzz-long: stopped by $work/stop before a slice of $name"
      exit 0
    fi
    log=$work/$name.log
    rc=0
    # a slice is 15 minutes, or what the target still needs (at least 1 minute)
    left=$(( quota - used ))
    secs=$(( left > 900 ? 900 : left < 60 ? 60 : left ))
    /usr/bin/time -f "%U %S" -o "$work/$name.cpu" "$f" -max_total_time="$secs" -print_final_stats=1 \
      -artifact_prefix="$work/crashes/$name/" "$corpus" >"$log" 2>&1 || rc=$?
    # time(1) puts "Command exited with non-zero status N" first when it does
    cpu=$(tail -1 "$work/$name.cpu" | awk '{printf "%d", $1+$2}')
    total=$(( used + cpu ))
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    mkdir -p "$top/fuzz/corpus/$name"
    "$f" -merge=1 "$top/fuzz/corpus/$name" "$corpus" >"$work/$name.merge.log" 2>&1 || true
    n=$(find "$top/fuzz/corpus/$name" -type f | wc -l)
    result=ok
    [ "$rc" -ne 0 ] && result="finding rc=$rc"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$name" "$cpu" "$total" \
      "${cov:-?}" "${ft:-?}" "$n" "$result" >>"$tsv"
    if [ "$rc" -ne 0 ]; then
      grep -E 'ERROR|SUMMARY|artifact' "$log" | head -20
      echo "fuzz-long: $name found something; reproducer in $work/crashes/$name/" >&2
      exit 1
    fi
  done
done
echo "fuzz-long: every target has $quota CPU-seconds; see fuzz/long-runs.tsv"
