#!/usr/bin/python3
"""Part "xds": the control plane's costs, each next to its peer in the same run.

  xds.py BUILD_DIR

1. Apply rate (bench/xds/xds_bench, through bench/lib/gbench.py): 10,000
   workloads + 1,000 services into the workload directory, 1,000 / 10,000
   policies into the policy store; peers: parsing the same messages only,
   upserting the same policies one at a time.
2. Memory per workload (bench/xds/xds_memory_bench): heap bytes the
   directory holds per workload after 10,000 and 50,000 workloads + 1,000
   services went in through xds::AddressHandler; peer: the serialized
   istio.workload.Address bytes of the same resources per workload (what
   istiod sends). The ratio figure is in-memory bytes over wire bytes.
3. Policy push -> connections closed (bench/xds/xds_policy_close_bench): 100
   and 1,000 carried HBONE streams, a DENY policy replaces the policy store's
   and HboneServer::Recheck() runs; microseconds until every client saw its
   stream end, total and per stream. Peers: the same streams ended by
   destroying the server (closing without policy work), and the Recheck's
   N PolicyStore::Check calls alone (policy work without closing).
"""
import json
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(here, "..", "lib"))
import figure  # noqa: E402

PY = "/usr/bin/python3"
MEMORY_SIZES = [10000, 50000]
CLOSE_STREAMS = [100, 1000]


def run_json(cmd, **kw):
    """Runs cmd, echoes its stderr, returns its stdout's JSON lines (None on failure)."""
    print("+ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, **kw)
    if p.returncode != 0:
        print(f"xds: {cmd[0]} exited {p.returncode}", file=sys.stderr)
        return None
    out = []
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
        elif line:
            print(line)
    return out


def apply_rate(build):
    return subprocess.call([
        PY, os.path.join(here, "..", "lib", "gbench.py"),
        os.path.join(build, "bench", "xds", "xds_bench"), "--min-time", "0.2",
        "--peer", "BM_ApplyAddresses/10000/1000=BM_Peer_ParseAddressesOnly/10000/1000",
        "--peer", "BM_ApplyAddresses/1000/100=BM_Peer_ParseAddressesOnly/1000/100",
        "--peer", "BM_ApplyPolicies/1000=BM_Peer_UpsertEach/1000",
        "--peer", "BM_ApplyPolicies/10000=BM_Peer_UpsertEach/10000"])


def memory(build, rounds):
    rows = run_json([os.path.join(build, "bench", "xds", "xds_memory_bench"), str(rounds)] +
                    [str(n) for n in MEMORY_SIZES])
    if not rows:
        return 1
    for n in MEMORY_SIZES:
        mine = [r for r in rows if r["workloads"] == n]
        if len(mine) != rounds:
            print(f"xds: memory_bench gave {len(mine)} rounds for {n} workloads", file=sys.stderr)
            return 1
        heap = [r["heap_bytes"] / n for r in mine]
        wire = [r["wire_bytes"] / n for r in mine]
        figure.emit(f"memory.{n}.wire_bytes_per_workload", "B", wire, better="lower",
                    label=f"istio.workload.Address bytes istiod sends per workload "
                          f"({n} workloads + 1000 services)", x=n)
        figure.emit(f"memory.{n}.heap_bytes_per_workload", "B", heap, better="lower",
                    peer=f"memory.{n}.wire_bytes_per_workload",
                    label=f"heap bytes the workload directory holds per workload "
                          f"({n} workloads + 1000 services, through xds::AddressHandler)", x=n)
        figure.emit(f"memory.{n}.heap_over_wire", "x", [h / w for h, w in zip(heap, wire)],
                    better="lower", label=f"in-memory bytes over wire bytes ({n} workloads)", x=n)
        print(f"memory {n} workloads: {sorted(heap)[len(heap) // 2]:.0f} B/workload in the "
              f"directory, {wire[0]:.0f} B/workload on the wire", flush=True)
    return 0


def policy_close(build, rounds):
    rows = run_json([os.path.join(build, "bench", "xds", "xds_policy_close_bench"), str(rounds)] +
                    [str(n) for n in CLOSE_STREAMS])
    if not rows:
        return 1
    what = {"recheck": "DENY policy Replace + HboneServer::Recheck until every client saw its end",
            "abort": "the server destroyed (every connection aborted) until every client saw "
                     "its end",
            "checks": "the Recheck's PolicyStore::Check calls alone"}
    for n in CLOSE_STREAMS:
        for mode in ("recheck", "abort", "checks"):
            us = [r["us"] for r in rows if r["streams"] == n and r["mode"] == mode]
            if len(us) != rounds:
                print(f"xds: policy_close_bench gave {len(us)} rounds of {mode}/{n}",
                      file=sys.stderr)
                return 1
            peer = {} if mode != "recheck" else {"peer": f"policy_close.{n}.abort.total"}
            figure.emit(f"policy_close.{n}.{mode}.total", "us", us, better="lower",
                        label=f"{n} streams: {what[mode]}", x=n, **peer)
            peer = {} if mode != "recheck" else {"peer": f"policy_close.{n}.abort.per_stream"}
            figure.emit(f"policy_close.{n}.{mode}.per_stream", "us", [u / n for u in us],
                        better="lower", label=f"per stream, {n} streams: {what[mode]}", x=n,
                        **peer)
            print(f"policy close {n} streams, {mode}: median "
                  f"{sorted(us)[len(us) // 2] / 1000:.2f} ms", flush=True)
    return 0


def main():
    build = os.path.abspath(sys.argv[1])
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    failed = 0
    for step in (lambda: apply_rate(build), lambda: memory(build, rounds),
                 lambda: policy_close(build, rounds)):
        failed |= step() != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
