#!/usr/bin/python3
"""Part "redirect": installing the default in-pod rule set into a fresh netns.

  redirect.py BUILD_DIR

Runs bench/redirect/apply_bench.cc (redirect_apply_bench) BENCH_ROUNDS times;
inside a run every row is measured sample by sample, alternating (native
library apply, the iptables backend, the ambientctl processes, the process
floors, and the peers `ip netns exec NS iptables-restore` and `nft -f`), each
sample in its own fresh namespace. Per round and row it emits the p50 and p99
(ms); the last round adds the soak (pods in a row, fds and RSS before/after).
Needs root.
"""
import os
import re
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(here, "..", "lib"))
import figure  # noqa: E402

# table row name (prefix) -> figure id
ROWS = [
    ("native (library", "native"),
    ("library, iptables backend", "lib_iptables"),
    ("ambientctl rules apply", "ambientctl"),
    ("ambientctl version", "ambientctl_start"),
    ("ambientctl-static rules apply", "ambientctl_static"),
    ("ambientctl-static version", "ambientctl_static_start"),
    ("floor: /bin/true", "floor_true"),
    ("floor: static no-op", "floor_noop"),
    ("ip netns exec NS iptables-restore", "iptables_restore"),
    ("ip netns exec NS nft -f", "nft"),
]
PEER = {"native": "iptables_restore", "ambientctl": "iptables_restore",
        "ambientctl_static": "iptables_restore", "lib_iptables": "iptables_restore"}


def parse(text):
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*(.+?)\s*\|\s*([0-9.]+)\s*\|\s*([0-9.]+)\s*\|\s*([0-9.]+)\s*\|", line)
        if not m:
            continue
        for prefix, ident in ROWS:
            if m.group(1).startswith(prefix):
                rows[ident] = (float(m.group(2)), float(m.group(3)), m.group(1))
                break
    soak = re.search(r"soak: (\d+) pods in a row \(native\): p50 ([0-9.]+) ms, p99 ([0-9.]+) ms; "
                     r"open fds (\d+) -> (\d+); VmRSS (\d+) -> (\d+) kB", text)
    return rows, soak


def main():
    build = sys.argv[1]
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    samples = os.environ.get("BENCH_REDIRECT_SAMPLES", "25")
    pods = os.environ.get("BENCH_REDIRECT_PODS", "300")
    binary = os.path.join(build, "bench", "redirect", "redirect_apply_bench")
    for r in range(1, rounds + 1):
        cmd = [binary, "--samples", samples, "--pods", pods if r == rounds else "0"]
        print(f"+ {' '.join(cmd)}   (round {r} of {rounds})", flush=True)
        out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        sys.stdout.write(out.stdout)
        if out.returncode != 0:
            print(f"redirect: {binary} exited {out.returncode}", file=sys.stderr)
            return 1
        rows, soak = parse(out.stdout)
        if "native" not in rows or "iptables_restore" not in rows:
            print("redirect: could not read the result table", file=sys.stderr)
            return 1
        for ident, (p50, p99, label) in rows.items():
            peer = PEER.get(ident)
            figure.emit(f"apply.p50.{ident}", "ms", [p50], better="lower", label=label,
                        peer=f"apply.p50.{peer}" if peer else None)
            figure.emit(f"apply.p99.{ident}", "ms", [p99], better="lower", label=label)
        for ident in ("native", "ambientctl", "ambientctl_static", "floor_noop"):
            if ident in rows:
                figure.emit(f"ratio.iptables_restore_over.{ident}", "x",
                            [rows["iptables_restore"][0] / rows[ident][0]], better="higher",
                            label=f"iptables-restore exec p50 / {ident} p50")
        if "nft" in rows:
            figure.emit("ratio.nft_over.native", "x", [rows["nft"][0] / rows["native"][0]],
                        better="higher", label="nft -f exec p50 / native p50")
        if soak:
            figure.emit("soak.p50.native", "ms", [float(soak.group(2))], better="lower",
                        label=f"native apply, {soak.group(1)} pods in a row, p50")
            figure.emit("soak.fd_growth", "fds", [int(soak.group(5)) - int(soak.group(4))],
                        better="lower", label="open descriptors after - before the soak")
            figure.emit("soak.rss_growth", "KiB", [int(soak.group(7)) - int(soak.group(6))],
                        better="lower", label="VmRSS after - before the soak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
