#!/usr/bin/env bash
# Installs, with apt, every Debian package ambient needs to build, test and run its
# demo. Idempotent: when everything is present it does nothing and exits 0.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake pkg-config clang libclang-rt-14-dev ccache
  # library dependencies
  libabsl-dev android-libboringssl-dev android-boringssl libnghttp2-dev
  # the OpenSSL 3 build (-DAMBIENT_TLS=openssl) and its embedding tests
  libssl-dev
  libprotobuf-dev protobuf-compiler libnftnl-dev libmnl-dev
  # header-only, at build time: SPIFFE bundle JSON (identity) and the examples' config
  nlohmann-json3-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  iproute2 iptables nftables ipset
  golang-go python3 python3-h2 iperf3 stunnel4 binutils
  libyaml-cpp-dev socat openssl
  # `make bench` charts
  gnuplot-nox
  # DNS proxy: dnsmasq and dig drive its tests and the demo (messages are
  # parsed with glibc's libresolv, in libc6-dev)
  dnsmasq bind9-dnsutils
  # control plane: an independent gRPC peer (python3-grpcio) for the gRPC
  # client's tests, and the fake istiod's CA (python3-cryptography)
  python3-grpcio python3-protobuf python3-cryptography
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages and not root; run as root or install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
