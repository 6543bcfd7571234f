#!/usr/bin/env bash
# Runs the Go and Rust binding tests against an ASan+UBSan build of
# libambient, e.g.
#
#   bash scripts/configure-sanitized.sh build-asan   (or a gcc -DAMBIENT_SANITIZE=address tree)
#   cmake --build build-asan -j2 --target ambient ambientctl
#   bash scripts/test-bindings-asan.sh build-asan
#
# The Go and Rust test programs are not instrumented, so the sanitizer
# runtime must be loaded ahead of everything else: LD_PRELOAD of the
# compiler's shared ASan runtime. Only the test
# programs get it: they are built first, without it, and the tests drop it
# from the environment of the system tools they start (ip, go run).
#
# Leak detection is on for both. Rust runs LeakSanitizer's check at exit.
# Go exits without running it (exit_group, no atexit), so the Go tests' own
# TestMain runs the check after the last test and a GC for the finalizers.
set -euo pipefail
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: test-bindings-asan.sh BUILD_DIR (a build made with -DAMBIENT_SANITIZE=address)" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
if ! grep -q '^AMBIENT_SANITIZE:STRING=address$' "$build/CMakeCache.txt" 2>/dev/null; then
  echo "test-bindings-asan: $build is not configured with -DAMBIENT_SANITIZE=address" >&2
  exit 2
fi
if [ ! -e "$build/lib/capi/libambient.so" ]; then
  echo "test-bindings-asan: build the library first: cmake --build $build --target ambient ambientctl" >&2
  exit 2
fi
# The runtime of the compiler the tree was built with: clang's shared ASan
# runtime (it carries UBSan's handlers and the coverage hooks of the fuzz
# instrumentation too) or gcc's libasan.
if grep -q '^CMAKE_CXX_COMPILER:.*clang++' "$build/CMakeCache.txt"; then
  asan=$(readlink -f "$(clang -print-file-name=libclang_rt.asan-x86_64.so)")
  pkg="libclang-rt-14-dev"
else
  asan=$(readlink -f "$(gcc -print-file-name=libasan.so)")
  pkg="libgcc-12-dev"
fi
if [ ! -e "$asan" ]; then
  echo "test-bindings-asan: no shared ASan runtime at $asan (Debian package $pkg)" >&2
  exit 2
fi

export AMBIENT_BUILD_DIR=$build
export PKG_CONFIG_PATH=$build/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export GOCACHE=$build/go-cache  # see test-bindings.sh
# halt on the first report; no ODR check (libambient's static deps are
# linked once, but the uninstrumented host may carry the same symbols);
# the host's allocator calls must not be checked against new/delete pairing
# it cannot see.
common="halt_on_error=1:abort_on_error=0:detect_odr_violation=0:alloc_dealloc_mismatch=0:print_summary=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== go test (bindings/go) with $asan preloaded, leak check in TestMain"
(
  cd "$top/bindings/go"
  GOFLAGS=-mod=mod GOPROXY=off CGO_ENABLED=1 go test -c -o "$tmp/ambient-go.test" .
  # Go's runtime handles SIGSEGV itself (nil dereferences become panics).
  status=0
  LD_PRELOAD=$asan ASAN_OPTIONS="$common:detect_leaks=1:handle_segv=0:allow_user_segv_handler=1" \
    "$tmp/ambient-go.test" -test.count=1 -test.v >"$tmp/go.log" 2>&1 || status=$?
  grep -Ev '^(=== RUN|    )' "$tmp/go.log" || true
  [ "$status" -eq 0 ] || exit "$status"
  # A run where the check silently did not happen must not pass.
  grep -q '^LeakSanitizer: no leaks$' "$tmp/go.log" || {
    echo "test-bindings-asan: the Go tests' leak check did not run" >&2
    exit 1
  }
)

echo "== cargo test --offline (bindings/rust) with $asan preloaded, detect_leaks=1"
(
  cd "$top/bindings/rust"
  cargo test --offline --workspace --lib --tests --no-run
  # Cargo runs each test program through the runner; the compilers and
  # build scripts run without it.
  export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="env LD_PRELOAD=$asan ASAN_OPTIONS=$common:detect_leaks=1"
  cargo test --offline --workspace --lib --tests
)
