#!/bin/bash
# bench-compare.sh BASE BUILD: `make bench-compare`. Builds commit BASE in a
# temporary git worktree (RelWithDebInfo, as `make build`), then runs
# scripts/bench.py --baseline on it against BUILD, the parts in $BENCH_PARTS
# (default hbone,e2e). The worktree is removed afterwards, also on failure.
set -euo pipefail
base=${1:?usage: bench-compare.sh BASE BUILD}
build=${2:?usage: bench-compare.sh BASE BUILD}
root=$(cd "$(dirname "$0")/.." && pwd)
rev=$(git -C "$root" rev-parse --verify --quiet "$base^{commit}") ||
  { echo "bench-compare: $base is not a commit of this repository" >&2; exit 2; }
tmp=$(mktemp -d /tmp/ambient-bench-base.XXXXXX)
cleanup() { git -C "$root" worktree remove --force "$tmp/src" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
git -C "$root" worktree add --quiet --detach "$tmp/src" "$rev"
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
echo "bench-compare: building $base (${rev:0:12}) in $tmp/src/build"
cmake -S "$tmp/src" -B "$tmp/src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
cmake --build "$tmp/src/build" -j"$(nproc)" >"$tmp/build.log" 2>&1 ||
  { tail -30 "$tmp/build.log" >&2; echo "bench-compare: building $base failed" >&2; exit 1; }
/usr/bin/python3 "$root/scripts/bench.py" --build "$build" --parts "${BENCH_PARTS:-hbone,e2e}" \
  --baseline "$tmp/src/build"
