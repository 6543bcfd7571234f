#!/usr/bin/python3
"""Part "tls": the two TLS libraries side by side, in the same run.

  tls.py BUILD_DIR [OTHER_BUILD_DIR]

BUILD_DIR and OTHER_BUILD_DIR are libambient built with each TLS library
(-DAMBIENT_TLS=boringssl / openssl; `make bench` passes build/ and
build-openssl/). Each round runs hbone_bench from both builds, one after the
other, the order alternating between rounds so both see the same load, and
emits, per library L (the build's AMBIENT_TLS):

  tls.new_connection_p50.L      BM_NewConnection: a new client, TLS 1.3 mTLS
                                handshake, HTTP/2, CONNECT, 200 and one echoed
                                byte over loopback sockets, p50 wall clock (us)
  tls.new_connection_server_cpu.L  the server thread's CPU per new connection
  tls.core_handshake.L          BM_CoreHandshake: the same, sans IO, both ends
                                on one thread, CPU per connection (us)
  tls.bare_handshake.L          BM_Peer_BareTlsHandshake: the TLS library's
                                own mutual handshake through a BIO pair with
                                the same SSL_CTXs and no ambient code (us):
                                the floor of the two above
  tls.handshakes_per_core_s.L   1 / core_handshake: whole connections (both
                                ends) per core-second
  tls.ecdsa_sign.L, tls.ecdsa_verify.L, tls.x25519.L   the public-key steps (us)
  tls.core_bulk.L               BM_CoreBulk/1 MiB: CPU per GB through the
                                in-memory core (seal on one end, open on the
                                other, one thread), core-s/GB
  tls.core_bulk_floor.L         AES-128-GCM seal + open per GB of the same
                                library (BM_AesGcmRecord), core-s/GB

The other library's figures name the first build's as their peer. Bulk
throughput and CPU per GB per side over sockets are the "pair" part's
ambient-L rows, the AES-GCM floors per library the "floors" part's.
"""
import json
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(here, "..", "lib"))
import figure  # noqa: E402
import tlsbuild  # noqa: E402

FILTER = ("^BM_(NewConnection|CoreHandshake|Peer_BareTlsHandshake|EcdsaP256Sign|"
          "EcdsaP256Verify|X25519Share|CoreBulk/1048576|AesGcmRecord/open:[01]/bits:128)(/|$)")


def run_bench(build):
    """One repetition of the FILTER benchmarks; {name: benchmark record}."""
    binary = os.path.join(build, "bench", "hbone", "hbone_bench")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        cmd = [binary, f"--benchmark_filter={FILTER}", "--benchmark_min_time=0.3",
               f"--benchmark_out={out}", "--benchmark_out_format=json"]
        print("+ " + " ".join(cmd), flush=True)
        rc = subprocess.call(cmd)
        if rc != 0:
            raise SystemExit(f"tls: {binary} exited {rc}")
        with open(out) as f:
            data = json.load(f)
    got = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type") == "iteration" and not b.get("error_occurred"):
            got[b["run_name"].split("/min_time")[0].replace("/real_time", "")] = b
    return got


def us(b):
    """CPU time per iteration in microseconds."""
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b.get("time_unit", "ns")]
    return b["cpu_time"] * scale


def emit_round(lib, first, got):
    peer = None if lib == first else first

    def put(name, unit, value, better, label, floor=None):
        if value is None:
            return
        figure.emit(f"{name}.{lib}", unit, [value], better=better,
                    peer=f"{name}.{peer}" if peer else None,
                    floor=f"{floor}.{lib}" if floor else None, label=f"{lib}: {label}")

    nc = got.get("BM_NewConnection", {})
    put("tls.new_connection_p50", "us", nc.get("p50_us"), "lower",
        "new connection (mTLS + HTTP/2 + CONNECT + first byte), loopback, p50",
        floor="tls.bare_handshake")
    put("tls.new_connection_server_cpu", "us", nc.get("server_cpu_us"), "lower",
        "server thread CPU per new connection")
    core = got.get("BM_CoreHandshake")
    bare = got.get("BM_Peer_BareTlsHandshake")
    put("tls.core_handshake", "us", us(core) if core else None, "lower",
        "sans-IO new connection, both ends, CPU", floor="tls.bare_handshake")
    put("tls.bare_handshake", "us", us(bare) if bare else None, "lower",
        "the library's own mutual TLS 1.3 handshake, both ends, no ambient code")
    put("tls.handshakes_per_core_s", "1/s", 1e6 / us(core) if core else None, "higher",
        "whole new connections (both ends) per core-second")
    for key, name, label in (("BM_EcdsaP256Sign", "tls.ecdsa_sign", "ECDSA P-256 sign"),
                             ("BM_EcdsaP256Verify", "tls.ecdsa_verify", "ECDSA P-256 verify"),
                             ("BM_X25519Share", "tls.x25519", "X25519 keygen + derive")):
        b = got.get(key)
        put(name, "us", us(b) if b else None, "lower", label)
    seal = got.get("BM_AesGcmRecord/open:0/bits:128", {}).get("bytes_per_second")
    opn = got.get("BM_AesGcmRecord/open:1/bits:128", {}).get("bytes_per_second")
    aes = 1e9 / seal + 1e9 / opn if seal and opn else None
    put("tls.core_bulk_floor", "core-s/GB", aes, "lower",
        "AES-128-GCM seal + open per GB, one core")
    bulk = got.get("BM_CoreBulk/1048576")
    put("tls.core_bulk", "core-s/GB", us(bulk) * 1e3 / (1 << 20) if bulk else None, "lower",
        "1 MiB through the in-memory core (both ends), CPU per GB", floor="tls.core_bulk_floor")


def main():
    builds = [os.path.abspath(b) for b in sys.argv[1:3]]
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    present = []
    for b in builds:
        if os.access(os.path.join(b, "bench", "hbone", "hbone_bench"), os.X_OK):
            present.append((tlsbuild.backend(b), b))
        else:
            print(f"tls: no hbone_bench in {b}; `make bench` builds it", flush=True)
    if not present:
        return 1
    if len(present) == 2 and present[0][0] == present[1][0]:
        print(f"tls: both builds use {present[0][0]}", flush=True)
        present = present[:1]
    first = present[0][0]
    for r in range(rounds):
        order = present if r % 2 == 0 else present[::-1]
        for lib, build in order:
            print(f"tls: round {r + 1}, {lib} ({build})", flush=True)
            emit_round(lib, first, run_bench(build))
    return 0


if __name__ == "__main__":
    sys.exit(main())
