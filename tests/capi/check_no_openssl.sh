#!/usr/bin/env bash
# check_no_openssl.sh LIB TLS: fails when the library (or anything it loads)
# needs the other TLS library than TLS (boringssl or openssl), or ldns. The
# two export the same symbol names, so a libambient must carry exactly one.
set -euo pipefail
lib=$1 tls=${2:-boringssl}
needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] || { echo "no NEEDED entries in $lib"; exit 1; }
loaded=$(ldd "$lib" | awk '{print $1 " " $3}')
if [ "$tls" = openssl ]; then
  # Debian's BoringSSL is libssl.so.0/libcrypto.so.0 under .../android/.
  bad=$(printf '%s\n' "$loaded" | grep -E '/android/|^libldns\.so' | sort -u || true)
  printf '%s\n' "$needed" | grep -qx 'libssl.so.3' || { echo "$lib does not need libssl.so.3"; exit 1; }
  what="BoringSSL / ldns"
else
  bad=$(printf '%s\n%s\n' "$needed" "$loaded" | awk '{print $1}' |
        grep -E '^(libssl\.so\.3|libcrypto\.so\.3|libldns\.so)' | sort -u || true)
  what="OpenSSL 3 / ldns"
fi
if [ -n "$bad" ]; then
  echo "$lib needs $what:"; printf '%s\n' "$bad"; exit 1
fi
echo "$(printf '%s\n' "$needed" | wc -l) NEEDED entries, none of $what"
