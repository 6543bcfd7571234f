#!/usr/bin/env bash
# Runs the Go and Rust binding tests against the library in BUILD_DIR.
# A binding that does not exist yet is reported, not silently passed.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
export AMBIENT_BUILD_DIR=$build
# cgo (`#cgo pkg-config: ambient`) and pkg-config find this build tree through
# its ambient-uninstalled.pc; nothing else is needed.
[ -f "$build/pkgconfig/ambient-uninstalled.pc" ] ||
  { echo "test-bindings: $build/pkgconfig/ambient-uninstalled.pc is missing (re-run cmake)" >&2; exit 1; }
export PKG_CONFIG_PATH=$build/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
# Go's build cache does not key cgo packages on what pkg-config printed: a
# cache of this build tree's own keeps another tree's (or an install's)
# library paths out of these tests.
export GOCACHE=$build/go-cache
# The TLS library the tree was built with (boringssl or openssl): the
# bindings need nothing different for either (libambient.so brings its own),
# and their tests check that the loaded library says the same.
AMBIENT_EXPECT_TLS_BACKEND=$(pkg-config --variable=tls_backend ambient)
export AMBIENT_EXPECT_TLS_BACKEND
echo "== TLS library of $build: $AMBIENT_EXPECT_TLS_BACKEND"
ran=0
if [ -f "$top/bindings/go/go.mod" ]; then
  echo "== go test (bindings/go)"
  (cd "$top/bindings/go" && GOFLAGS=-mod=mod GOPROXY=off CGO_ENABLED=1 go vet ./... && \
    GOFLAGS=-mod=mod GOPROXY=off CGO_ENABLED=1 go test -count=1 -v ./... | grep -Ev '^(=== RUN|    )')
  ran=$((ran + 1))
fi
if [ -f "$top/bindings/rust/Cargo.toml" ]; then
  echo "== cargo test --offline (bindings/rust)"
  (cd "$top/bindings/rust" && cargo test --offline --workspace --lib --tests && \
    cargo test --offline --workspace --doc && \
    echo "== cargo doc (warnings are errors)" && \
    RUSTDOCFLAGS="-D warnings" cargo doc --offline --workspace --no-deps --quiet)
  ran=$((ran + 1))
fi
[ "$ran" -gt 0 ] || echo "bindings: none built yet (bindings/go and bindings/rust are not in the tree)"

# The examples (bindings/go/examples/*, bindings/rust/ambient/examples/*.rs)
# as a user runs them: verify an SVID; tunnel through `ambientctl hbone serve`
# to an echo server. Test PKI from gencerts.go, a serve and an echo process of
# our own on loopback, all stopped at exit.
echo "== examples (verify, tunnel)"
# shellcheck source=lib/hbone_fixture.sh
. "$top/scripts/lib/hbone_fixture.sh"
fixture_init "$top"
fixture_echo
fixture_serve "$build/examples/ambientctl/ambientctl"
db=spiffe://example.org/ns/default/sa/db
web=spiffe://example.org/ns/default/sa/web
fail=0
want() {  # want NAME GOT WANTED
  if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "FAIL: $1: got '$2', want '$3'"; fail=1; fi
}
go_ex() { (cd "$top/bindings/go" && GOFLAGS=-mod=mod GOPROXY=off CGO_ENABLED=1 go run "./examples/$1" "${@:2}"); }
rs_ex() { (cd "$top/bindings/rust" && cargo run --offline --quiet -p ambient --example "$1" -- "${@:2}"); }
want "go verify" "$(go_ex verify --bundle "$work/ca.pem" --chain "$work/leaf.pem")" "$web"
rc=0; go_ex verify --bundle "$work/ca.pem" --chain "$work/other_leaf.pem" >/dev/null 2>&1 || rc=$?
want "go verify of a foreign SVID exits 1" "$rc" 1
want "go tunnel" "$(echo hello-go | go_ex tunnel --via "$via" --authority "$echo_addr" \
  --cert "$work/leaf.pem" --key "$work/leaf.key" --bundle "$work/ca.pem" --expect "$db")" hello-go
want "rust verify" "$(rs_ex verify "$work/ca.pem" "$work/leaf.pem" example.org)" "$web"
rc=0; rs_ex verify "$work/ca.pem" "$work/other_leaf.pem" example.org >/dev/null 2>&1 || rc=$?
want "rust verify of a foreign SVID exits 1" "$rc" 1
want "rust tunnel" "$(echo hello-rust | rs_ex tunnel "$via" "$echo_addr" "$work/leaf.pem" \
  "$work/leaf.key" "$work/ca.pem" "$db")" hello-rust
err=$(echo x | rs_ex tunnel localhost:15008 "$echo_addr" "$work/leaf.pem" "$work/leaf.key" \
  "$work/ca.pem" 2>&1 >/dev/null || true)
case "$err" in *"numeric IP:port"*) echo "ok: rust tunnel error says what is needed" ;;
  *) echo "FAIL: rust tunnel error: $err"; fail=1 ;; esac
[ "$fail" -eq 0 ]
