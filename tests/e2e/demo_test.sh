#!/usr/bin/env bash
# Runs `make demo`'s script (scripts/demo.sh) against this build: the
# example node agent and node proxy as separate processes, two pods, HBONE
# between them. It exits non-zero when the traffic did not flow.
# Usage: demo_test.sh BUILD_DIR SOURCE_DIR. Needs root; without it the test
# is skipped loudly (exit 77), or fails under AMBIENT_REQUIRE_PRIVILEGED=1.
set -u
build=$1
src=$2
skip() {
  if [ "${AMBIENT_REQUIRE_PRIVILEGED:-0}" = 1 ]; then
    echo "demo test: $1 and AMBIENT_REQUIRE_PRIVILEGED=1 is set" >&2
    exit 1
  fi
  echo "*** NOT RUN: demo test: $1 ***"
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root"
for t in socat openssl dig /usr/sbin/dnsmasq; do
  command -v "$t" >/dev/null || skip "$t is missing (scripts/install-deps.sh installs it)"
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT
bash "$src/scripts/demo.sh" "$build" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || exit "$rc"
# The node proxy's --metrics endpoint, read by the demo after the traffic:
# ready, and the istio_tcp_* counters moved.
fail=0
grep -q '^    HTTP/1.1 200 OK$' "$out" || { echo "FAIL: /healthz/ready was not 200 after the snapshot" >&2; fail=1; }
for m in connections_opened_total connections_closed_total sent_bytes_total received_bytes_total; do
  grep -Eq "^    istio_tcp_$m [1-9][0-9]*$" "$out" ||
    { echo "FAIL: istio_tcp_$m did not move (or /metrics did not answer)" >&2; fail=1; }
done
# DNS capture on: the DNS proxy answered and forwarded (step 8b).
grep -Eq '^    istio_dns_requests_total\{request_protocol="udp"\} [1-9][0-9]*$' "$out" ||
  { echo "FAIL: istio_dns_requests_total (udp) did not move" >&2; fail=1; }
grep -Eq '^    istio_dns_upstream_requests_total\{request_protocol="udp"\} [1-9][0-9]*$' "$out" ||
  { echo "FAIL: no query was forwarded upstream (istio_dns_upstream_requests_total)" >&2; fail=1; }
# Interrupted half way, the demo says so and leaves nothing behind.
int_out=$(mktemp)
trap 'rm -f "$out" "$int_out"' EXIT
# (job control on: a background job of a script would ignore SIGINT otherwise)
set -m
bash "$src/scripts/demo.sh" "$build" >"$int_out" 2>&1 &
demo=$!
set +m
for _ in $(seq 1 400); do grep -q '== 5\.' "$int_out" && break; sleep 0.05; done
demo_ns=$(grep -o 'node ambient-demo-[0-9]*-node' "$int_out" | head -1 | sed 's/^node //; s/-node$//')
kill -INT "$demo"
wait "$demo"
rc=$?
[ "$rc" -eq 130 ] || { echo "FAIL: interrupted demo exited $rc, want 130" >&2; fail=1; }
grep -q '^demo: interrupted; stopping' "$int_out" || { echo "FAIL: no 'interrupted' line" >&2; cat "$int_out" >&2; fail=1; }
grep -q '^demo: cleaned up' "$int_out" || { echo "FAIL: no 'cleaned up' line" >&2; fail=1; }
[ -n "$demo_ns" ] || { echo "FAIL: the interrupted demo printed no namespace names" >&2; fail=1; }
if [ -n "$demo_ns" ] && ip netns list | grep -q "$demo_ns"; then
  echo "FAIL: interrupted demo left namespaces: $(ip netns list | grep "$demo_ns")" >&2; fail=1
fi
exit $fail
