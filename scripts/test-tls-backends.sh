#!/usr/bin/env bash
# test-tls-backends.sh BUILD_A BUILD_B: ambient against ambient across the two
# TLS libraries. BUILD_A and BUILD_B are build trees made with different
# AMBIENT_TLS (boringssl, openssl). For each direction, `ambientctl hbone
# serve` of one tree and `ambientctl hbone connect` of the other carry 1 MiB
# of random bytes to an echo server and back (compared by SHA-256), and a
# client expecting another identity is refused. Loopback only; everything
# started is stopped at exit.
set -euo pipefail
a=$(cd "$1" && pwd) b=$(cd "$2" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
tls_of() { PKG_CONFIG_PATH=$1/pkgconfig pkg-config --variable=tls_backend ambient; }
ta=$(tls_of "$a") tb=$(tls_of "$b")
[ "$ta" != "$tb" ] || { echo "test-tls-backends: both trees use $ta"; exit 2; }
# shellcheck source=lib/hbone_fixture.sh
. "$top/scripts/lib/hbone_fixture.sh"
fixture_init "$top"
fixture_echo
head -c 1048576 /dev/urandom >"$work/payload"
want=$(sha256sum <"$work/payload" | cut -d' ' -f1)
fail=0
for pair in "$a $b" "$b $a"; do
  set -- $pair
  server=$1 client=$2
  name="$(tls_of "$client") client -> $(tls_of "$server") server"
  fixture_serve "$server/examples/ambientctl/ambientctl"
  ctl=$client/examples/ambientctl/ambientctl
  got=$(timeout 30 "$ctl" hbone connect --via "$via" --authority "$echo_addr" --cert "$work/leaf.pem" \
    --key "$work/leaf.key" --bundle "$work/ca.pem" --expect spiffe://example.org/ns/default/sa/db \
    <"$work/payload" | sha256sum | cut -d' ' -f1) || true
  if [ "$got" = "$want" ]; then echo "ok: $name: 1 MiB echoed intact"; else echo "FAIL: $name: 1 MiB"; fail=1; fi
  rc=0
  echo x | timeout 30 "$ctl" hbone connect --via "$via" --authority "$echo_addr" --cert "$work/leaf.pem" \
    --key "$work/leaf.key" --bundle "$work/ca.pem" --expect spiffe://example.org/ns/default/sa/other \
    >/dev/null 2>"$work/refused.err" || rc=$?
  if [ "$rc" -ne 0 ] && grep -q "not one of the expected" "$work/refused.err"; then
    echo "ok: $name: an unexpected server identity is refused"
  else
    echo "FAIL: $name: unexpected identity: exit $rc, $(cat "$work/refused.err")"; fail=1
  fi
  kill "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
done
[ "$fail" -eq 0 ]
