#!/usr/bin/python3
"""Part "gobind": one call onto a running runtime loop from Go (bindings/go).

  gobind.py BUILD_DIR

Runs bindings/go's BenchmarkLoopDo (back to back, one goroutine),
BenchmarkLoopDoParallel (two goroutines) and BenchmarkLoopDoIdle (the loop
idle 2 ms before each call: the usual control-plane call) with
`go test -bench -count BENCH_ROUNDS` against the libambient of BUILD_DIR, and
emits ns per call. No peer runs here (the implementation it replaced is gone;
bench/LEARNED.md has the before/after).
"""
import os
import re
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(here, "..", "lib"))
import figure  # noqa: E402


def main():
    build = os.path.abspath(sys.argv[1])
    rounds = os.environ.get("BENCH_ROUNDS", "3")
    # As scripts/test-bindings.sh: the package finds the build tree's library
    # through its `#cgo pkg-config: ambient` and the uninstalled .pc file.
    pc = os.path.join(build, "pkgconfig")
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off", CGO_ENABLED="1",
               GOCACHE=os.path.join(build, "go-cache"),
               PKG_CONFIG_PATH=pc + (":" + os.environ["PKG_CONFIG_PATH"]
                                     if os.environ.get("PKG_CONFIG_PATH") else ""))
    runs = [("BenchmarkLoopDo$|BenchmarkLoopDoParallel$", "0.5s"),
            ("BenchmarkLoopDoIdle$", "300x")]
    seen = 0
    for pattern, benchtime in runs:
        cmd = ["go", "test", "-run", "XXX", "-bench", pattern, "-benchtime", benchtime,
               "-count", rounds, "."]
        print("+ " + " ".join(cmd), flush=True)
        p = subprocess.run(cmd, cwd=os.path.join(root, "bindings", "go"), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sys.stdout.write(p.stdout)
        if p.returncode != 0:
            print(f"gobind: go test exited {p.returncode}", file=sys.stderr)
            return 1
        for line in p.stdout.splitlines():
            m = re.match(r"^(Benchmark\w+?)(-\d+)?\s+\d+\s+([0-9.]+) ns/op", line)
            if m:
                seen += 1
                figure.emit(f"{m.group(1)}.ns_per_op", "ns", [float(m.group(3))], better="lower",
                            label=f"bindings/go {m.group(1)}: one Loop.do call")
    if seen == 0:
        print("gobind: no benchmark results in the output", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
