#!/usr/bin/env bash
# consumer_test.sh BUILD_DIR CONSUMER_SRC CMAKE: install BUILD_DIR into a
# scratch prefix, then build and run the consumer three ways.
set -euo pipefail
build=$1 src=$2 cmake=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log"

lib=$prefix/lib/libambient.so
readelf -d "$lib" | grep -q 'SONAME.*libambient.so.0' || { echo "no SONAME"; exit 1; }
readelf -d "$lib" | grep -q 'RUNPATH.*android' || { echo "installed lib has no RUNPATH to BoringSSL"; exit 1; }
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
  case "$out" in "ambient "*" ok") ;; *) echo "unexpected output"; exit 1 ;; esac
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
case "$out" in "ambient "*" ok") ;; *) echo "unexpected output"; exit 1 ;; esac
echo "4 passed, 0 failed"
