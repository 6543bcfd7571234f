#!/usr/bin/python3
"""gbench.py: runs a Google Benchmark binary as a bench part and emits its figures.

  gbench.py BINARY [--filter REGEX] [--reps N] [--min-time S]
            [--peer BENCH=PEER_BENCH]... [--better-higher COUNTER]...

Repetitions run randomly interleaved (--benchmark_enable_random_interleaving),
so a benchmark and its peer alternate within the run. For every benchmark
(the run name without "/min_time:..." and "/real_time") it emits, one value per repetition:
  NAME.cpu   CPU time per iteration, in the benchmark's time unit
  NAME.real  wall time per iteration
  NAME.COUNTER  every user counter (rates already per second)
--peer A=B records that A.* is compared with B.* (same metric).
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import figure  # noqa: E402

HIGHER = ("per_s", "bytes_per_second", "items_per_second")


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--filter", default=".")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    ap.add_argument("--min-time", default=None)
    ap.add_argument("--peer", action="append", default=[])
    a = ap.parse_args(argv)
    if not os.access(a.binary, os.X_OK):
        print(f"gbench.py: missing {a.binary} (build all targets first)", file=sys.stderr)
        return 1
    peers = dict(p.split("=", 1) for p in a.peer)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        cmd = [a.binary, f"--benchmark_filter={a.filter}",
               f"--benchmark_repetitions={a.reps}",
               "--benchmark_enable_random_interleaving=true",
               f"--benchmark_out={out}", "--benchmark_out_format=json"]
        if a.min_time:
            cmd.append(f"--benchmark_min_time={a.min_time}")
        print("+ " + " ".join(cmd), flush=True)
        rc = subprocess.call(cmd)
        if rc != 0:
            print(f"gbench.py: {a.binary} exited {rc}", file=sys.stderr)
            return rc
        data = json.load(open(out))
    series = collections.OrderedDict()
    for b in data.get("benchmarks", []):
        if b.get("run_type") != "iteration" or b.get("error_occurred"):
            continue
        # "BM_X/32/min_time:2.000/real_time" -> "BM_X/32"
        name = re.sub(r"/(min_time:[0-9]+\.[0-9]+|real_time)", "", b["run_name"])
        unit = b.get("time_unit", "ns")
        s = series.setdefault(name, collections.OrderedDict())
        s.setdefault(("cpu", unit), []).append(b["cpu_time"])
        s.setdefault(("real", unit), []).append(b["real_time"])
        for k, v in b.items():
            if k in ("cpu_time", "real_time", "iterations", "repetitions", "repetition_index",
                     "threads", "family_index", "per_family_instance_index"):
                continue
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                s.setdefault((k, _unit(k)), []).append(v)
    for name, metrics in series.items():
        for (metric, unit), values in metrics.items():
            higher = metric.endswith(HIGHER)
            peer = None
            if name in peers:
                peer = f"{peers[name]}.{metric}"
            figure.emit(f"{name}.{metric}", unit, values, better="higher" if higher else "lower",
                        peer=peer, label=f"{name} {metric}")
    return 0


def _unit(counter):
    if counter.endswith("_us"):
        return "us"
    if counter.endswith("per_s") or counter == "items_per_second":
        return "1/s"
    if counter == "bytes_per_second":
        return "B/s"
    return ""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
