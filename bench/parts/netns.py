#!/usr/bin/python3
"""Part "netns": ZDS Add/Del round trips and pod listener sets.

  netns.py BUILD_DIR

Runs bench/netns/zds_bench.cc (netns_zds_bench PODS) BENCH_ROUNDS times. In a
run: ZDS Add->Ack with the proxy opening the 7-socket listener set in the
pod's fresh netns against the no-op handler (protocol + fd passing only, the
peer), the listener set entered on the calling thread against a helper
thread, SocketIn against a plain socket(), and memory per pod. Needs root.
"""
import os
import re
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(here, "..", "lib"))
import figure  # noqa: E402

# line prefix -> (figure id, peer id)
LINES = [
    ("ZDS Add->Ack, proxy opens", "zds_add.listeners", "zds_add.noop"),
    ("ZDS Del->Ack, proxy closes", "zds_del.listeners", "zds_del.noop"),
    ("ZDS Add->Ack, no-op handler", "zds_add.noop", None),
    ("ZDS Del->Ack, no-op handler", "zds_del.noop", None),
    ("listener set (7 sockets), setns on calling", "listeners.calling_thread",
     "listeners.helper_thread"),
    ("listener set (7 sockets), helper thread", "listeners.helper_thread", None),
    ("one socket via SocketIn", "socket.socketin", "socket.plain"),
    ("one plain socket()", "socket.plain", None),
]


def main():
    build = sys.argv[1]
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    pods = os.environ.get("BENCH_NETNS_PODS", "500")
    binary = os.path.join(build, "bench", "netns", "netns_zds_bench")
    for r in range(1, rounds + 1):
        print(f"+ {binary} {pods}   (round {r} of {rounds})", flush=True)
        out = subprocess.run([binary, pods], stdout=subprocess.PIPE, text=True)
        sys.stdout.write(out.stdout)
        if out.returncode != 0:
            print(f"netns: {binary} exited {out.returncode}", file=sys.stderr)
            return 1
        seen = 0
        for line in out.stdout.splitlines():
            for prefix, ident, peer in LINES:
                if line.startswith(prefix):
                    nums = re.findall(r"[0-9]+\.[0-9]+", line[52:])
                    if len(nums) < 3:
                        continue
                    seen += 1
                    label = line[:52].strip()
                    figure.emit(f"{ident}.p50", "us", [float(nums[0])], better="lower",
                                label=label, peer=f"{peer}.p50" if peer else None)
                    figure.emit(f"{ident}.p99", "us", [float(nums[1])], better="lower",
                                label=label)
        m = re.search(r"process RSS ([+-]?\d+) KiB \(([0-9.]+) KiB/pod\); kernel socket slabs "
                      r"([+-]?\d+) KiB \(([0-9.]+) KiB/pod\)", out.stdout)
        if m:
            figure.emit("memory.rss_per_pod", "KiB", [float(m.group(2))], better="lower",
                        label="process RSS per pod (listener set and handles)")
            figure.emit("memory.socket_slabs_per_pod", "KiB", [float(m.group(4))],
                        better="lower", label="kernel socket slabs per pod")
        if seen < 4:
            print("netns: could not read the results", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
