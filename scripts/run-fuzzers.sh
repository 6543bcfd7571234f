#!/usr/bin/env bash
# run-fuzzers.sh BUILD_DIR SECONDS: builds every libFuzzer target with clang and
# runs each for SECONDS, starting from its seed corpus in fuzz/corpus/<name>.
# A crash, leak or sanitizer report fails the run.
set -euo pipefail
build=${1:-build-fuzz}
seconds=${2:-20}
top=$(cd "$(dirname "$0")/.." && pwd)
CC=clang CXX=clang++ cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DAMBIENT_BUILD_FUZZ=ON -DAMBIENT_WERROR=OFF -DAMBIENT_BUILD_TESTS=OFF -DAMBIENT_BUILD_BENCH=OFF \
  -DAMBIENT_BUILD_EXAMPLES=OFF >/dev/null
targets=$(cd "$top/fuzz" && grep -ho 'ambient_add_fuzzer(fuzz_[a-z0-9_]*' */CMakeLists.txt 2>/dev/null | sed 's/ambient_add_fuzzer(//' | tr '\n' ' ')
if [ -z "$targets" ]; then
  echo "fuzz: no fuzz targets yet"
  exit 0
fi
# shellcheck disable=SC2086
cmake --build "$build" -j"$(nproc)" --target $targets
for name in $targets; do
  f=$(find "$build/fuzz" -type f -name "$name" | head -1)
  corpus=$(mktemp -d)
  [ -d "$top/fuzz/corpus/$name" ] && cp -r "$top/fuzz/corpus/$name/." "$corpus/"
  echo "== $name for ${seconds}s"
  "$f" -max_total_time="$seconds" -print_final_stats=1 "$corpus" 2>"$corpus.log" || {
    tail -50 "$corpus.log"; rm -rf "$corpus" "$corpus.log"; exit 1; }
  grep -E 'stat::number_of_executed_units' "$corpus.log" || true
  rm -rf "$corpus" "$corpus.log"
done
