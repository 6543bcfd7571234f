#!/usr/bin/env bash
# run-fuzzers.sh BUILD_DIR SECONDS: builds every libFuzzer target and runs each
# for SECONDS, starting from its seed corpus in fuzz/corpus/<name>. A crash,
# leak or sanitizer report fails the run. BUILD_DIR is used as it is when it
# was configured with -DAMBIENT_BUILD_FUZZ=ON (a long local run may want its
# own -O2 tree); otherwise it is configured as the sanitizer tree that
# `make asan-test` shares (scripts/configure-sanitized.sh).
set -euo pipefail
build=${1:-build-asan}
seconds=${2:-20}
top=$(cd "$(dirname "$0")/.." && pwd)
if ! grep -q '^AMBIENT_BUILD_FUZZ:BOOL=ON$' "$build/CMakeCache.txt" 2>/dev/null; then
  bash "$top/scripts/configure-sanitized.sh" "$build"
fi
targets=$(cd "$top/fuzz" && grep -ho 'ambient_add_fuzzer(fuzz_[a-z0-9_]*' */CMakeLists.txt 2>/dev/null | sed 's/ambient_add_fuzzer(//' | tr '\n' ' ')
if [ -z "$targets" ]; then
  echo "fuzz: no fuzz targets yet"
  exit 0
fi
# shellcheck disable=SC2086
cmake --build "$build" -j"$(nproc)" --target $targets
# run_one NAME: one target for $seconds from a copy of its seed corpus; on a
# finding, the end of its log and exit 1. As many run at once as there are
# cores (each fuzzer is one process), so the whole set takes
# targets * seconds / cores.
run_one() {
  local name=$1 f corpus
  f=$(find "$build/fuzz" -type f -name "$name" | head -1)
  corpus=$(mktemp -d)
  [ -d "$top/fuzz/corpus/$name" ] && cp -r "$top/fuzz/corpus/$name/." "$corpus/"
  if ! "$f" -max_total_time="$seconds" -print_final_stats=1 "$corpus" 2>"$corpus.log"; then
    echo "== $name: FAILED"
    tail -50 "$corpus.log"
    rm -rf "$corpus" "$corpus.log"
    return 1
  fi
  echo "== $name for ${seconds}s: $(grep -E 'stat::number_of_executed_units' "$corpus.log" || true)"
  rm -rf "$corpus" "$corpus.log"
}
export -f run_one
export build seconds top
# shellcheck disable=SC2086
printf '%s\n' $targets | xargs -P "$(nproc)" -I{} bash -c 'run_one "$1"' _ {} || {
  echo "fuzz: a target found something (above)" >&2
  exit 1
}
