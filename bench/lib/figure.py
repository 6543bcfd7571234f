#!/usr/bin/python3
"""figure.py: how a benchmark part hands a figure to the runner (scripts/bench.py).

A part appends one JSON object per line to the file named by $BENCH_FIGURES
(the runner sets it; when it is unset, e.g. a harness run by hand, nothing is
written). Lines with the same name are merged by the runner: each line adds
its values as further rounds. Fields (see bench/README.md):

  name    stable id inside the part, e.g. "pair.gbps.ambient"
  unit    e.g. "Gbit/s", "us", "core-s/GB"
  values  list of numbers, one per round (or per sample)
  label   what it is, for tables (optional)
  better  "higher" or "lower" (optional)
  peer    name of the figure (same part, or "part/name") it is compared to
  floor   name of the floor figure it is compared to
  cdf     [[percentile, value], ...] latency distribution of one round
  x       numeric x coordinate for series charts (e.g. connection count)

From a shell:  python3 bench/lib/figure.py NAME UNIT VALUE... [--label L]
                 [--better higher|lower] [--peer P] [--floor F] [--cdf FILE] [--x X]
From Python:   figure.emit(name, unit, values, label=..., ...)
"""
import argparse
import json
import os
import sys


def emit(name, unit, values, **extra):
    path = os.environ.get("BENCH_FIGURES")
    if not path:
        return
    values = [float(v) for v in (values if isinstance(values, (list, tuple)) else [values])]
    rec = {"name": name, "unit": unit, "values": values}
    rec.update({k: v for k, v in extra.items() if v is not None})
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


def read_cdf(path):
    """Reads "percentile value" lines (hbone_benchtool's BENCH_CDF_FILE)."""
    out = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                out.append([float(parts[0]), float(parts[1])])
    return out


def main(argv):
    ap = argparse.ArgumentParser(description="append one figure to $BENCH_FIGURES")
    ap.add_argument("name")
    ap.add_argument("unit")
    ap.add_argument("values", nargs="+")
    ap.add_argument("--label")
    ap.add_argument("--better", choices=["higher", "lower"])
    ap.add_argument("--peer")
    ap.add_argument("--floor")
    ap.add_argument("--cdf", help="file of 'percentile value' lines")
    ap.add_argument("--x", type=float)
    a = ap.parse_args(argv)
    try:
        values = [float(v) for v in a.values]
    except ValueError:
        print(f"figure.py: {a.name}: not a number in {a.values}", file=sys.stderr)
        return 2
    cdf = read_cdf(a.cdf) if a.cdf and os.path.exists(a.cdf) else None
    emit(a.name, a.unit, values, label=a.label, better=a.better, peer=a.peer, floor=a.floor,
         cdf=cdf, x=a.x)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
