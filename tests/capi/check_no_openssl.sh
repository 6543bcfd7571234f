#!/usr/bin/env bash
# Fails when the library (or anything it loads) needs OpenSSL 3 or ldns: the
# library carries BoringSSL, and the two export the same symbol names.
set -euo pipefail
lib=$1
needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] || { echo "no NEEDED entries in $lib"; exit 1; }
loaded=$(ldd "$lib" | awk '{print $1}')
bad=$(printf '%s\n%s\n' "$needed" "$loaded" | grep -E '^(libssl\.so\.3|libcrypto\.so\.3|libldns\.so)' | sort -u || true)
if [ -n "$bad" ]; then
  echo "$lib needs OpenSSL 3 / ldns:"; printf '%s\n' "$bad"; exit 1
fi
echo "$(printf '%s\n' "$needed" | wc -l) NEEDED entries, none of libssl.so.3, libcrypto.so.3, libldns.so"
