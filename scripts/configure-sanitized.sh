#!/usr/bin/env bash
# configure-sanitized.sh BUILD_DIR: configures the one sanitizer tree that
# `make fuzz` and `make asan-test` share: clang, AddressSanitizer +
# UndefinedBehaviorSanitizer, libFuzzer coverage on all project code, the
# tests, the examples and the fuzz targets, -O0 with line tables (enough for
# the sanitizers' reports, and clang compiles it in about half gcc's time).
# A tree configured earlier with another compiler is removed first (CMake
# cannot switch compilers in place).
set -euo pipefail
build=${1:?usage: configure-sanitized.sh BUILD_DIR}
top=$(cd "$(dirname "$0")/.." && pwd)
if [ -f "$build/CMakeCache.txt" ] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang++' "$build/CMakeCache.txt"; then
  echo "configure-sanitized: $build was configured with another compiler; starting it afresh"
  rm -rf "$build"
fi
CC=clang CXX=clang++ cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-O0 -gline-tables-only" -DCMAKE_CXX_FLAGS_DEBUG="-O0 -gline-tables-only" \
  -DAMBIENT_SANITIZE=address -DAMBIENT_BUILD_FUZZ=ON -DAMBIENT_WERROR=OFF \
  -DAMBIENT_BUILD_TESTS=ON -DAMBIENT_BUILD_EXAMPLES=ON -DAMBIENT_BUILD_BENCH=OFF >/dev/null
