#!/usr/bin/env bash
# Runs `make demo-xds`'s script (scripts/demo-xds.sh) against this build: the
# example node proxy with --xds-address and no workload file, against the
# fake istiod (tests/xds/fake_istiod.py, python3-grpcio) serving delta xDS
# and the Istio CA over TLS; HBONE between two pods with CA-issued SVIDs, then
# a DENY policy from xDS. The script itself checks the outcomes and exits
# non-zero when one is missing.
# Usage: demo_xds_test.sh BUILD_DIR SOURCE_DIR. Needs root; without it the
# test is skipped loudly (exit 77), or fails under AMBIENT_REQUIRE_PRIVILEGED=1.
set -u
build=$1
src=$2
skip() {
  if [ "${AMBIENT_REQUIRE_PRIVILEGED:-0}" = 1 ]; then
    echo "demo-xds test: $1 and AMBIENT_REQUIRE_PRIVILEGED=1 is set" >&2
    exit 1
  fi
  echo "*** NOT RUN: demo-xds test: $1 ***"
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root"
for t in socat openssl protoc; do
  command -v "$t" >/dev/null || skip "$t is missing (scripts/install-deps.sh installs it)"
done
exec bash "$src/scripts/demo-xds.sh" "$build"
