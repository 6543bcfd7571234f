#!/usr/bin/env bash
# consumer_test.sh BUILD_DIR CONSUMER_SRC CMAKE TLS: install BUILD_DIR (built
# with TLS library TLS: boringssl or openssl) into a scratch prefix, then build
# and run the consumer three ways.
set -euo pipefail
build=$1 src=$2 cmake=$3 tls=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log"

lib=$prefix/lib/libambient.so
readelf -d "$lib" | grep -q 'SONAME.*libambient.so.0' || { echo "no SONAME"; exit 1; }
needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
if [ "$tls" = boringssl ]; then
  readelf -d "$lib" | grep -q 'RUNPATH.*android' || { echo "installed lib has no RUNPATH to BoringSSL"; exit 1; }
  echo "$needed" | grep -q '^libssl\.so\.3$' && { echo "the BoringSSL build needs OpenSSL 3"; exit 1; }
else
  echo "$needed" | grep -q '^libssl\.so\.3$' || { echo "the OpenSSL build does not need libssl.so.3: $needed"; exit 1; }
fi
pc_tls=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --variable=tls_backend ambient)
[ "$pc_tls" = "$tls" ] || { echo "ambient.pc says tls_backend=$pc_tls, the build is $tls"; exit 1; }
bad=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^ambient_' || true)
[ -z "$bad" ] || { echo "installed lib exports non-ambient symbols: $bad"; exit 1; }
[ -f "$prefix/lib/libambient.a" ] || { echo "no libambient.a"; exit 1; }

# 1 + 2: find_package(ambient), shared and static.
for kind in shared static; do
  "$cmake" -S "$src" -B "$work/b-$kind" -DCMAKE_PREFIX_PATH="$prefix" -DCONSUMER_LINK="$kind" \
    >"$work/cfg-$kind.log" 2>&1 || { cat "$work/cfg-$kind.log"; exit 1; }
  "$cmake" --build "$work/b-$kind" >"$work/build-$kind.log" 2>&1 || { cat "$work/build-$kind.log"; exit 1; }
  out=$("$work/b-$kind/consumer")
  echo "find_package ($kind): $out"
  case "$out" in "ambient "*" ($tls) ok") ;; *) echo "unexpected output"; exit 1 ;; esac
done
out=$("$work/b-shared/layer_consumer")
echo "find_package (ambient::authz layer): $out"
[ "$out" = "layer app/deny-all ok" ] || { echo "unexpected output"; exit 1; }

# 3: pkg-config.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cc -std=c11 -pedantic -Werror $(pkg-config --cflags ambient) "$src/consumer.c" -o "$work/pc-consumer" \
  $(pkg-config --libs ambient)
out=$("$work/pc-consumer")
echo "pkg-config: $out"
case "$out" in "ambient "*" ($tls) ok") ;; *) echo "unexpected output"; exit 1 ;; esac

# 4: a C-only project linking libambient.a through find_package (the C
# compiler links, so the C++ runtime must come from the target's interface).
"$cmake" -S "$src/../consumer-c" -B "$work/b-c-static" -DCMAKE_PREFIX_PATH="$prefix" \
  >"$work/cfg-c-static.log" 2>&1 || { cat "$work/cfg-c-static.log"; exit 1; }
"$cmake" --build "$work/b-c-static" >"$work/build-c-static.log" 2>&1 ||
  { echo "C-only project cannot link ambient::ambient_static:"; cat "$work/build-c-static.log"; exit 1; }
out=$("$work/b-c-static/consumer")
echo "find_package (C only, static): $out"
case "$out" in "ambient "*" ($tls) ok") ;; *) echo "unexpected output"; exit 1 ;; esac
readelf -d "$work/b-c-static/consumer" | grep -q 'NEEDED.*libambient' &&
  { echo "C-only static consumer needs libambient.so"; exit 1; }

# 5: pkg-config --static, C compiler, with only the archive in the prefix
# (the linker would pick libambient.so when both are there).
cp -a "$prefix" "$work/static-prefix"
rm -f "$work/static-prefix"/lib/libambient.so*
PKG_CONFIG_PATH=$work/static-prefix/lib/pkgconfig
cc -std=c11 -pedantic -Werror $(PKG_CONFIG_PATH=$PKG_CONFIG_PATH pkg-config --cflags ambient) \
  "$src/consumer.c" -o "$work/pc-static-consumer" \
  $(PKG_CONFIG_PATH=$PKG_CONFIG_PATH pkg-config --static --libs ambient) ||
  { echo "pkg-config --static --libs ambient does not link libambient.a"; exit 1; }
out=$("$work/pc-static-consumer")
echo "pkg-config --static: $out"
case "$out" in "ambient "*" ($tls) ok") ;; *) echo "unexpected output"; exit 1 ;; esac

# 6: the installed programs start from this non-default prefix, and still do
# after the whole tree is moved ($ORIGIN-relative RUNPATH, nothing absolute
# pointing into the prefix or the build tree).
for p in ambientctl node-agent node-proxy waypoint; do
  [ -x "$prefix/bin/$p" ] || { echo "$p is not installed"; exit 1; }
  rp=$(readelf -d "$prefix/bin/$p" | grep -E 'RUNPATH|RPATH' || true)
  case "$rp" in *'$ORIGIN/../lib'*) ;; *) echo "$p RUNPATH lacks \$ORIGIN/../lib: $rp"; exit 1 ;; esac
  case "$rp" in *"$build"*|*"$prefix"*|*/usr/local/lib*) echo "$p RUNPATH is absolute: $rp"; exit 1 ;; esac
done
mv "$prefix" "$work/moved"
for dir in "$work/moved"; do
  out=$("$dir/bin/ambientctl" version) || { echo "installed ambientctl does not start"; exit 1; }
  echo "installed ambientctl version: $(echo "$out" | tr '\n' ' ')"
  echo "$out" | grep -qx "libambient [0-9.]*" || { echo "unexpected ambientctl output"; exit 1; }
  echo "$out" | grep -qx "tls $tls" || { echo "ambientctl does not say tls $tls"; exit 1; }
  "$dir/bin/node-agent" --help >/dev/null || { echo "installed node-agent does not start"; exit 1; }
  "$dir/bin/node-proxy" --help >/dev/null || { echo "installed node-proxy does not start"; exit 1; }
  "$dir/bin/waypoint" --help >/dev/null || { echo "installed waypoint does not start"; exit 1; }
  echo "installed node-agent, node-proxy, waypoint: start"
done
mv "$work/moved" "$prefix"

# 7: license metadata in what is installed.
grep -q 'SPDX-License-Identifier: Apache-2.0' "$prefix/lib/pkgconfig/ambient.pc" ||
  { echo "ambient.pc has no SPDX identifier"; exit 1; }
grep -q 'ambient_LICENSE "Apache-2.0"' "$prefix/lib/cmake/ambient/ambientConfig.cmake" ||
  { echo "ambientConfig.cmake has no license"; exit 1; }
[ -f "$prefix/share/doc/ambient/LICENSE" ] && [ -f "$prefix/share/doc/ambient/NOTICE" ] ||
  { echo "LICENSE/NOTICE not installed"; exit 1; }

# 8: a Go module outside this repository using the binding, as
# bindings/README.md shows: go.mod `replace` to bindings/go, the installed
# ambient found by `#cgo pkg-config: ambient`, offline, no CGO_* flags, and
# the program runs without LD_LIBRARY_PATH.
repo=$(cd "$src/../../.." && pwd)
if command -v go >/dev/null; then
  mkdir -p "$work/goapp"
  cat >"$work/goapp/go.mod" <<GOMOD
module example.com/goapp

go 1.19

require ambient.dev/ambient v0.0.0

replace ambient.dev/ambient => $repo/bindings/go
GOMOD
  cat >"$work/goapp/main.go" <<'GOMAIN'
package main

import (
	"fmt"
	"os"

	"ambient.dev/ambient"
)

func main() {
	if err := ambient.CheckRuntime(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := ambient.ParseSpiffeID("cluster.local/ns/default/sa/demo"); err == nil {
		fmt.Fprintln(os.Stderr, "a SPIFFE ID without its scheme was accepted")
		os.Exit(1)
	}
	fmt.Println("go ambient", ambient.Version(), "ok")
}
GOMAIN
  (cd "$work/goapp" && env -u CGO_CFLAGS -u CGO_LDFLAGS -u LD_LIBRARY_PATH \
     PKG_CONFIG_PATH="$prefix/lib/pkgconfig" GOFLAGS=-mod=mod GOPROXY=off CGO_ENABLED=1 \
     GOCACHE="$work/go-cache" \
     go build -o "$work/goapp/goapp" . ) >"$work/go-build.log" 2>&1 ||
    { echo "Go module outside the repo does not build:"; cat "$work/go-build.log"; exit 1; }
  out=$(env -u LD_LIBRARY_PATH "$work/goapp/goapp")
  echo "Go module outside the repo: $out"
  case "$out" in "go ambient "*" ok") ;; *) echo "unexpected output"; exit 1 ;; esac
  readelf -d "$work/goapp/goapp" | grep -q "RUNPATH.*$prefix/lib" ||
    { echo "Go program has no RUNPATH to the installed lib"; exit 1; }
else
  echo "*** NOT RUN: Go module outside the repo (no go) ***"
fi

# 9: a Cargo project outside this repository depending on the `ambient` crate
# by path, against the installed library (pkg-config), offline; its build.rs
# sets the rpath from DEP_AMBIENT_RS_LIBDIR, so it runs without LD_LIBRARY_PATH.
if command -v cargo >/dev/null; then
  mkdir -p "$work/rsapp/src"
  cat >"$work/rsapp/Cargo.toml" <<TOML
[package]
name = "rsapp"
version = "0.1.0"
edition = "2021"

[dependencies]
ambient = { path = "$repo/bindings/rust/ambient" }
TOML
  cat >"$work/rsapp/build.rs" <<'BUILDRS'
fn main() {
    if let Ok(dir) = std::env::var("DEP_AMBIENT_RS_LIBDIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
BUILDRS
  cat >"$work/rsapp/src/main.rs" <<'RSMAIN'
fn main() {
    ambient::check_runtime().expect("runtime check");
    println!("rust ambient {} ok", ambient::version());
}
RSMAIN
  (cd "$work/rsapp" && env -u AMBIENT_LIB_DIR -u AMBIENT_BUILD_DIR -u LD_LIBRARY_PATH \
     PKG_CONFIG_PATH="$prefix/lib/pkgconfig" CARGO_TARGET_DIR="$work/rsapp/target" \
     cargo build --offline --quiet) >"$work/cargo-build.log" 2>&1 ||
    { echo "Cargo project outside the repo does not build:"; cat "$work/cargo-build.log"; exit 1; }
  out=$(env -u LD_LIBRARY_PATH "$work/rsapp/target/debug/rsapp")
  echo "Cargo project outside the repo: $out"
  case "$out" in "rust ambient "*" ok") ;; *) echo "unexpected output"; exit 1 ;; esac
else
  echo "*** NOT RUN: Cargo project outside the repo (no cargo) ***"
fi
echo "10 passed, 0 failed"
