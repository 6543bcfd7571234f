#!/usr/bin/env bash
# Runs the Go and Rust binding tests against the library in BUILD_DIR.
# A binding that does not exist yet is reported, not silently passed.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
export AMBIENT_BUILD_DIR=$build
# cgo finds the headers and the library of this build tree.
export CGO_CFLAGS="-I$top/include -I$build/include"
export CGO_LDFLAGS="-L$build/lib/capi -Wl,-rpath,$build/lib/capi"
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
    cargo test --offline --workspace --doc)
  ran=$((ran + 1))
fi
[ "$ran" -gt 0 ] || echo "bindings: none built yet (bindings/go and bindings/rust are not in the tree)"
