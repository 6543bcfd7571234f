#!/usr/bin/python3
"""Part "attack": the attack suite's figures (issue 17), measured, not asserted.

  attack.py BUILD_DIR [TUNNELS]

Runs the attack test binaries (tests/attack: accept out of descriptors,
silent connections, streams reset while their upstream connect is pending,
a PING flood, a peer killed or frozen mid-transfer, TUNNELS idle tunnels,
default 5,000) BENCH_ROUNDS times with --gtest_output=json and emits what
each test recorded with RecordProperty: the loop's CPU while accept() is out
of descriptors, how long a legitimate tunnel took during each attack,
descriptors left above the baseline afterwards, CPU and memory growth while a
peer is frozen, memory per idle tunnel and the share kept after the burst.
The tests' own bounds (1 s, 200 ms of CPU per 600 ms, baseline descriptors)
are the goals; a failing test fails the part.
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

BINARIES = ["attack_hbone_server_test", "attack_peer_test"]
# property -> (unit, better, label)
PROPS = {
    "legit_tunnel_ms": ("ms", "lower", "a legitimate tunnel (TLS + CONNECT 200) during the attack"),
    "loop_cpu_ms_per_600ms": ("ms", "lower", "loop CPU in 600 ms with accept() out of descriptors"),
    "fds_above_baseline_after": ("fds", "lower", "descriptors above the baseline afterwards"),
    "frozen_peer_cpu_ms_per_1500ms": ("ms", "lower", "process CPU in 1.5 s with a frozen peer"),
    "frozen_peer_rss_growth_kib": ("KiB", "lower", "resident growth in 1.5 s with a frozen peer"),
    "kib_per_idle_tunnel_incl_client_and_upstream":
        ("KiB", "lower", "resident per idle tunnel (server, client and upstream together)"),
    "rss_kept_after_burst_pct": ("%", "lower", "share of the burst's resident growth kept after "
                                 "the clients left and the loop trimmed"),
}


def main():
    build = os.path.abspath(sys.argv[1])
    tunnels = sys.argv[2] if len(sys.argv) > 2 else "5000"
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    env = dict(os.environ, AMBIENT_ATTACK_TUNNELS=tunnels)
    seen = 0
    for r in range(rounds):
        for b in BINARIES:
            binary = os.path.join(build, "tests", "attack", b)
            with tempfile.TemporaryDirectory() as d:
                out = os.path.join(d, "out.json")
                cmd = [binary, f"--gtest_output=json:{out}"]
                print(f"+ [{r + 1}/{rounds}] {' '.join(cmd)}", flush=True)
                p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
                if p.returncode != 0:
                    sys.stdout.write(p.stdout)
                    print(f"attack: {b} failed (exit {p.returncode})", file=sys.stderr)
                    return 1
                with open(out) as f:
                    result = json.load(f)
            for suite in result.get("testsuites", []):
                for t in suite.get("testsuite", []):
                    for prop, (unit, better, label) in PROPS.items():
                        if prop not in t:
                            continue
                        seen += 1
                        name = f"{t['name']}.{prop}"
                        print(f"  {name} = {t[prop]} {unit}")
                        figure.emit(name, unit, [float(t[prop])], better=better,
                                    label=f"{t['name']}: {label}")
    if seen == 0:
        print("attack: the tests recorded no figures", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
