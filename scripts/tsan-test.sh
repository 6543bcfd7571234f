#!/usr/bin/env bash
# tsan-test.sh [BUILD_DIR]: the tests whose code runs on more than one thread
# (the runtime's event loop and HBONE proxy, both ends of ZDS, the C ABI's
# loop thread, the node proxy, the DNS server, the attack suite's server
# cases) built with ThreadSanitizer and run; any data race, lock-order
# inversion or other TSan report fails the run.
#
# clang, not g++: g++ 12's TSan and Debian's libprotobuf 3.21 crash together
# on a plain Map lookup (Struct::fields().contains() in a ten-line program),
# which clang's TSan does not.
set -euo pipefail
build=${1:-build-tsan}
top=$(cd "$(dirname "$0")/.." && pwd)
tests=(
  runtime/runtime_test runtime/runtime_zds_client_test
  netns/netns_test netns/netns_zds_session_test
  capi/capi_runtime_test
  e2e/e2e_node_proxy_unit_test e2e/e2e_node_proxy_test e2e/e2e_node_proxy_capi_test
  dns/dns_server_test dns/dns_pod_test
  attack/attack_hbone_server_test
)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
CC=clang CXX=clang++ cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-O1 -gline-tables-only" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" \
  -DAMBIENT_SANITIZE=thread -DAMBIENT_BUILD_BENCH=OFF -DAMBIENT_BUILD_FUZZ=OFF -DAMBIENT_WERROR=OFF \
  "${launcher[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${tests[@]##*/}"
failed=()
for t in "${tests[@]}"; do
  log=$build/tests/${t}.tsan.log
  start=$(date +%s)
  if TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1" \
     AMBIENT_REQUIRE_PRIVILEGED=${AMBIENT_REQUIRE_PRIVILEGED:-0} \
     "$build/tests/$t" >"$log" 2>&1; then
    echo "tsan: ${t##*/} ok ($(grep -E '^\[  PASSED' "$log" | sed -E 's/.*PASSED  \] ([0-9]+) tests?\./\1 tests/'), $(( $(date +%s) - start )) s)"
  else
    echo "tsan: ${t##*/} FAILED (log: $log)"
    grep -E -A30 'WARNING: ThreadSanitizer|ERROR: ThreadSanitizer|^\[  FAILED' "$log" | head -60
    failed+=("${t##*/}")
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "tsan: failed: ${failed[*]}" >&2
  exit 1
fi
echo "tsan: ${#tests[@]} test programs, no ThreadSanitizer report"
