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
4. CA round trip (bench/xds/xds_ca_bench) against tests/xds/fake_istiod.py --ca
   on loopback (python3-grpcio, signing with python3-cryptography; its
   modules generated with protoc into a temporary directory, the mesh CA
   written by the bench): key + CSR, CreateCertificate over an
   xds::ControlPlaneConnection, the answer's checks; p50 and p90 per
   certificate. Peers: the key + CSR generation alone (crypto) and a unary
   /ambient.test.Echo/Echo of the same request bytes on the same connection
   (transport + python's gRPC); the remainder is python's signing plus the
   answer's verification.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(here, "..", "lib"))
import figure  # noqa: E402

PY = "/usr/bin/python3"
MEMORY_SIZES = [10000, 50000]
CLOSE_STREAMS = [100, 1000]
CA_COUNT = 100  # certificates (and peer operations) per round


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


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def ca(build, rounds):
    bench = os.path.join(build, "bench", "xds", "xds_ca_bench")
    with tempfile.TemporaryDirectory(prefix="ambient-xds-bench-") as tmp:
        if subprocess.call([bench, "write-ca", tmp]) != 0:
            return 1
        protos = [os.path.join(root, "lib", "xds", f) for f in
                  ("discovery.proto", "workload.proto", "ca.proto")] + \
                 [os.path.join(root, "lib", "authz", "authorization.proto")]
        if subprocess.call(["protoc", f"--python_out={tmp}", "-I", os.path.join(root, "lib", "xds"),
                            "-I", os.path.join(root, "lib", "authz"), "-I", "/usr/include"] +
                           protos) != 0:
            print("xds: protoc failed", file=sys.stderr)
            return 1
        fake = subprocess.Popen(
            [PY, os.path.join(root, "tests", "xds", "fake_istiod.py"), tmp, "--ca",
             os.path.join(tmp, "ca-cert.pem"), os.path.join(tmp, "ca-key.pem")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            port = fake.stdout.readline().strip()
            if not port.isdigit():
                print(f"xds: fake istiod did not start ({port!r})", file=sys.stderr)
                return 1
            # It prints a line per CA request: keep reading so it never blocks.
            threading.Thread(target=lambda: fake.stdout.read(), daemon=True).start()
            rows = run_json([bench, "run", f"127.0.0.1:{port}", str(CA_COUNT), str(rounds)])
        finally:
            fake.stdin.close()
            try:
                fake.wait(timeout=10)
            except subprocess.TimeoutExpired:
                fake.kill()
                fake.wait()
    if not rows:
        return 1
    by = {m: [r["us"] for r in rows if r["mode"] == m] for m in ("ca", "csr", "echo")}
    if any(len(v) != rounds for v in by.values()):
        print("xds: ca_bench gave the wrong number of rounds", file=sys.stderr)
        return 1
    what = {"ca": "CA round trip per certificate (key + CSR, CreateCertificate to the fake "
                  "istiod, the answer's checks)",
            "csr": "P-256 key + CSR generation alone (xds::MakeCsr)",
            "echo": "unary Echo of the same request bytes on the same connection"}
    for p in (50, 90):
        for m in ("ca", "csr", "echo"):
            peer = {"peer": f"ca.echo.p{p}"} if m == "ca" else {}
            figure.emit(f"ca.{m}.p{p}", "us", [pct(v, p) for v in by[m]], better="lower",
                        label=f"{what[m]}, p{p}", **peer)
    rest = [pct(c, 50) - pct(k, 50) - pct(e, 50) for c, k, e in zip(by["ca"], by["csr"], by["echo"])]
    figure.emit("ca.remainder.p50", "us", rest, better="lower",
                label="CA round trip p50 minus key+CSR p50 minus Echo p50: python's signing "
                      "plus the answer's verification")
    for m in ("ca", "csr", "echo"):
        med = sorted(pct(v, 50) for v in by[m])[rounds // 2]
        p90 = sorted(pct(v, 90) for v in by[m])[rounds // 2]
        print(f"ca {m}: p50 {med / 1000:.2f} ms, p90 {p90 / 1000:.2f} ms", flush=True)
    return 0


def main():
    build = os.path.abspath(sys.argv[1])
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    failed = 0
    for step in (lambda: apply_rate(build), lambda: memory(build, rounds),
                 lambda: policy_close(build, rounds), lambda: ca(build, rounds)):
        failed |= step() != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
