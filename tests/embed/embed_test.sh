#!/usr/bin/env bash
# embed_test.sh c HOST MODE AMBIENTCTL LIBAMBIENT SRC
# embed_test.sh python SCRIPT TLS AMBIENTCTL LIBAMBIENT SRC
# Makes a test PKI (bindings/rust/testdata/gencerts.go), starts an echo
# server and `ambientctl hbone serve` on loopback, then runs the host program
# (the C OpenSSL host, or the Python ssl host) against them. Everything it
# starts is stopped at exit.
set -euo pipefail
kind=$1 host=$2 mode=$3 ctl=$4 lib=$5 src=$6
# shellcheck source=../../scripts/lib/hbone_fixture.sh
. "$src/scripts/lib/hbone_fixture.sh"
fixture_init "$src"
fixture_echo
via=127.0.0.1:9  # nothing listens: the refused C host never dials
if [ "$kind" = python ] || [ "$mode" = works ]; then fixture_serve "$ctl"; fi
case "$kind" in
  c) "$host" "$work" "$via" "$echo_addr" "$mode" ;;
  python) /usr/bin/python3 "$host" "$lib" "$work" "$via" "$echo_addr" "$mode" ;;
  *) echo "unknown kind $kind"; exit 2 ;;
esac
