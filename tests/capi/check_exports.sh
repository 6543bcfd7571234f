#!/usr/bin/env bash
# Fails when libambient.so exports any defined dynamic symbol not named ambient_*.
set -euo pipefail
lib=$1
syms=$(nm -D --defined-only "$lib" | awk '{print $3}')
[ -n "$syms" ] || { echo "no exported symbols in $lib"; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -v '^ambient_' || true)
if [ -n "$bad" ]; then
  echo "symbols exported besides ambient_*:"; printf '%s\n' "$bad" | head -20; exit 1
fi
soname=$(readelf -d "$lib" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
case "$soname" in libambient.so.[0-9]*) ;; *) echo "bad SONAME '$soname'"; exit 1 ;; esac
echo "$(printf '%s\n' "$syms" | wc -l) symbols exported, all ambient_*; SONAME $soname"
