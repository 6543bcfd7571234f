#!/usr/bin/python3
"""tlsbuild.py: which TLS library a build directory's libambient uses.

  python3 bench/lib/tlsbuild.py BUILD_DIR   prints "boringssl" or "openssl"
  tlsbuild.backend(BUILD_DIR)               the same, from Python

Read from the build's CMakeCache.txt (AMBIENT_TLS; boringssl when unset, the
project's default). Exits 1 when BUILD_DIR is not a configured build.
"""
import os
import re
import sys


def backend(build):
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        m = re.search(r"^AMBIENT_TLS:[A-Z]+=(\w+)$", f.read(), re.M)
    return m.group(1).lower() if m else "boringssl"


if __name__ == "__main__":
    try:
        print(backend(sys.argv[1]))
    except (IndexError, OSError) as e:
        print(f"tlsbuild.py: {e}", file=sys.stderr)
        sys.exit(1)
