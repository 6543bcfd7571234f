#!/usr/bin/python3
"""Part "floors": what this machine costs before any proxy code runs.

  floors.py BUILD_DIR [OTHER_BUILD_DIR]

- loopback TCP: iperf3 straight over 127.0.0.1, one stream (loopback_floor.sh):
  Gbit/s and sender + receiver CPU per GB = the kernel cost of one receive plus
  one send of each byte, which every relay side pays.
- AES-GCM per core: BM_AesGcmRecord (hbone_bench), one 16 KiB TLS record per
  iteration through the build's TLS library (EVP_CIPHER), seal and open, 128 and 256 bits.
- derived, per round: relay_client = loopback send+recv + AES-128-GCM seal,
  relay_server = loopback send+recv + AES-128-GCM open (core-s/GB): the floor
  each HBONE side is compared with (TLS 1.3 negotiates AES-128-GCM here).
- OTHER_BUILD_DIR, when it holds hbone_bench, is libambient built with the
  other TLS library (`make bench`: build-openssl/): its AES-GCM is measured in
  the same rounds, and its figures and relay floors carry the library's name
  as a suffix (aes128gcm.seal.core_s_per_gb.openssl, relay_client...openssl).
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


def run_collect(cmd):
    """Runs cmd with its own figures file; returns the figures it emitted."""
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as f:
        env = dict(os.environ, BENCH_FIGURES=f.name)
        rc = subprocess.call(cmd, env=env)
        if rc != 0:
            raise SystemExit(f"floors: {' '.join(cmd)} exited {rc}")
        return [json.loads(line) for line in f if line.strip()]


def main():
    build = sys.argv[1]
    other = sys.argv[2] if len(sys.argv) > 2 else None
    if other and not os.access(os.path.join(other, "bench", "hbone", "hbone_bench"), os.X_OK):
        other = None
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    secs = os.environ.get("BENCH_FLOOR_SECONDS", "3")
    figs = run_collect(["bash", os.path.join(here, "..", "hbone", "loopback_floor.sh"), secs,
                        str(rounds)])
    by = {}
    for f in figs:
        by.setdefault(f["name"], []).extend(f["values"])
        figure.emit(**{k: v for k, v in f.items()})
    loop = by.get("loopback.send_recv.core_s_per_gb", [])
    libs = [(build, "")]
    if other and tlsbuild.backend(other) != tlsbuild.backend(build):
        libs.append((other, "." + tlsbuild.backend(other)))
    aes_figs = {suffix: [] for _, suffix in libs}
    for r in range(rounds):  # the libraries alternate, one repetition each
        for b, suffix in (libs if r % 2 == 0 else libs[::-1]):
            aes_figs[suffix] += run_collect(
                [sys.executable, os.path.join(here, "..", "lib", "gbench.py"),
                 os.path.join(b, "bench", "hbone", "hbone_bench"), "--filter",
                 "BM_AesGcmRecord", "--reps", "1", "--min-time", "0.2"])
    for b, suffix in libs:
        aes_by = {}
        for f in aes_figs[suffix]:
            aes_by.setdefault(f["name"], []).extend(f["values"])
            if not suffix:
                figure.emit(**{k: v for k, v in f.items()})
        lib = tlsbuild.backend(b)
        for side, aes_name in (("client", "BM_AesGcmRecord/open:0/bits:128.bytes_per_second"),
                               ("server", "BM_AesGcmRecord/open:1/bits:128.bytes_per_second")):
            op = "seal" if side == "client" else "open"
            aes_cost = [1e9 / v for v in aes_by.get(aes_name, []) if v > 0]
            figure.emit(f"aes128gcm.{op}.core_s_per_gb{suffix}", "core-s/GB", aes_cost,
                        better="lower", peer=f"aes128gcm.{op}.core_s_per_gb" if suffix else None,
                        label=f"AES-128-GCM {op}, one core, 16 KiB records ({lib})")
            n = min(len(loop), len(aes_cost))
            if n:
                figure.emit(f"relay_{side}.core_s_per_gb{suffix}", "core-s/GB",
                            [loop[i] + aes_cost[i] for i in range(n)], better="lower",
                            label=f"floor of an HBONE {side} side: loopback send+recv + "
                                  f"AES-128-GCM {op} ({lib})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
