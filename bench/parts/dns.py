#!/usr/bin/python3
"""Part "dns": the DNS proxy against dnsmasq answering directly, same run.

  dns.py BUILD_DIR [SECONDS]

Runs bench/dns/dns_bench (no root; needs /usr/sbin/dnsmasq) BENCH_ROUNDS
times. Each run starts its own dnsmasq and DNS proxy on loopback and measures,
one after the other, UDP queries for
  mesh       a service name the proxy answers itself,
  forwarded  a name the proxy forwards to dnsmasq,
  direct     the same name asked of dnsmasq itself (the peer),
one query at a time (answered queries per second, p50/p99 latency) and with
32 queries in flight (answered queries per second). Emits those as figures,
each round's value as one sample.
"""
import os
import re
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(here, "..", "lib"))
import figure  # noqa: E402

CASES = {"mesh": "mesh name (proxy answers)", "forwarded": "forwarded name (proxy -> dnsmasq)",
         "direct": "dnsmasq directly"}
ROW = re.compile(r"^(mesh|forwarded|direct) .*?\s([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s*$")


def main():
    build = os.path.abspath(sys.argv[1])
    seconds = sys.argv[2] if len(sys.argv) > 2 else "2"
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    binary = os.path.join(build, "bench", "dns", "dns_bench")
    got = {c: {"qps": [], "p50": [], "p99": [], "window": []} for c in CASES}
    for r in range(rounds):
        cmd = [binary, "--seconds", seconds]
        print(f"+ round {r + 1}/{rounds}: " + " ".join(cmd), flush=True)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sys.stdout.write(p.stdout)
        if p.returncode != 0:
            print(f"dns: dns_bench exited {p.returncode}", file=sys.stderr)
            return 1
        for line in p.stdout.splitlines():
            m = ROW.match(line)
            if m:
                c = got[m.group(1)]
                c["qps"].append(float(m.group(2)))
                c["p50"].append(float(m.group(3)))
                c["p99"].append(float(m.group(4)))
                c["window"].append(float(m.group(5)))
    for case, what in CASES.items():
        if len(got[case]["qps"]) != rounds:
            print(f"dns: {case}: {len(got[case]['qps'])} of {rounds} rounds parsed", file=sys.stderr)
            return 1
        peer = None if case == "direct" else "direct"
        figure.emit(f"{case}.qps", "queries/s", got[case]["qps"], better="higher",
                    label=f"{what}: answered queries/s, one at a time",
                    peer=peer and f"{peer}.qps")
        figure.emit(f"{case}.p50_us", "us", got[case]["p50"], better="lower",
                    label=f"{what}: p50 latency", peer=peer and f"{peer}.p50_us")
        figure.emit(f"{case}.p99_us", "us", got[case]["p99"], better="lower",
                    label=f"{what}: p99 latency", peer=peer and f"{peer}.p99_us")
        figure.emit(f"{case}.window32_qps", "queries/s", got[case]["window"], better="higher",
                    label=f"{what}: answered queries/s, 32 in flight",
                    peer=peer and f"{peer}.window32_qps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
