#!/usr/bin/python3
"""bench.py: `make bench`, every benchmark of the project in one run.

  scripts/bench.py [--build DIR] [--tls-build DIR] [--parts a,b] [--rounds N] [--seconds S]
                   [--out DIR] [--list] [--dry-run] [--no-report]
                   [--baseline DIR [--compare FILE]]

Runs the parts listed in PARTS (all of them by default; --parts or $BENCH picks
some), one after the other, printing which part is running, n of N, and its
output. A part is one program that hands its figures over by appending JSON
lines to $BENCH_FIGURES (see bench/lib/figure.py); it gets $BENCH_ROUNDS and
runs every measurement that many times, alternating with its peers. The run
writes bench/results/<UTC timestamp>.json (format: bench/README.md), then
scripts/bench_report.py draws the charts into bench/results/<timestamp>/ and,
for a run of every part, regenerates bench/RESULTS.md. Older results are
removed: bench/results keeps the latest full run (and a newer partial one).
Loopback and network namespaces the parts make themselves only.

--tls-build DIR (default build-openssl) is libambient built with the other TLS
library (-DAMBIENT_TLS=openssl; `make bench` builds it): the floors, pair and
tls parts measure it beside --build in the same rounds.

--baseline DIR is the same-run before/after of a change: DIR is the build
directory of another commit (`make bench-compare BASE=<rev>` makes one). Each
round of each part then runs twice, once on DIR's programs and once on
--build's, alternating which goes first, with this tree's part scripts; DIR's
figures are named "baseline.<name>". The run is written to
bench/results/compare-<stamp>.json and scripts/bench_compare.py renders it
(--compare FILE: the markdown file to write, default bench/BEFORE-AFTER.md).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"


class Part:
    def __init__(self, name, what, cmd, seconds, root=False):
        self.name, self.what, self.cmd, self.seconds, self.root = name, what, cmd, seconds, root


# The one list of parts. {build}, {rounds}, {seconds}, {py} are filled in; a
# command runs from the repository root. `seconds` is the expected duration
# at 3 rounds on the 2-vCPU VM under load (progress display only). Add a part here to add it to `make bench`.
PARTS = [
    Part("floors", "the machine's floor: loopback TCP send+recv and AES-GCM per core",
         ["{py}", "bench/parts/floors.py", "{build}", "{tls_build}"], 55),
    Part("identity", "SPIFFE ID parsing and X509-SVID verification vs bare chain verification",
         ["{py}", "bench/lib/gbench.py", "{build}/bench/identity/identity_bench",
          "--min-time", "0.1",
          "--peer", "BM_VerifyX509Svid=BM_Peer_BareX509VerifyCert",
          "--peer", "BM_SvidVerifierVerifyDer=BM_Peer_ParseDerThenBareVerify",
          "--peer", "BM_SpiffeIdParse=BM_Peer_ZtunnelStyleIstioParse",
          "--peer", "BM_ParseSpiffeIdView=BM_Peer_ZtunnelStyleIstioParse"], 10),
    Part("redirect", "in-pod rule install vs ip netns exec iptables-restore and nft -f",
         ["{py}", "bench/parts/redirect.py", "{build}"], 50, root=True),
    Part("netns", "ZDS Add/Del round trips and pod listener sets vs a no-op handler",
         ["{py}", "bench/parts/netns.py", "{build}"], 15, root=True),
    Part("authz", "L4 authorization checks and policy replacement, 10,000 policies",
         ["{py}", "bench/lib/gbench.py", "{build}/bench/authz/authz_bench",
          "--min-time", "0.2"], 10),
    Part("xds", "xDS apply rate (10,000 workloads + 1,000 services, 1,000 / 10,000 "
         "policies), memory per workload vs its wire size, policy push -> streams closed, CA round trip",
         ["{py}", "bench/parts/xds.py", "{build}"], 60),
    Part("hbone", "HBONE core in memory, handshake crypto, pooled streams, new connections",
         ["{py}", "bench/lib/gbench.py", "{build}/bench/hbone/hbone_bench",
          "--filter", "BM_(Core|Ecdsa|X25519|Pooled|NewConnection)", "--min-time", "0.2"], 60),
    Part("pair", "HBONE pair vs the Go standard-library pair vs stunnel: throughput, CPU/GB, "
         "ping-pong, new tunnels",
         ["bash", "bench/hbone/pair_bench.sh", "{build}", "{seconds}", "{rounds}", "{tls_build}"],
         320),
    Part("tls", "the two TLS libraries in the same run: new connection, handshake CPU against "
         "the library's bare handshake, public-key steps, bulk CPU per GB against AES-GCM",
         ["{py}", "bench/parts/tls.py", "{build}", "{tls_build}"], 70),
    Part("idle", "memory per idle tunnelled connection vs count, ambient vs Go",
         ["bash", "bench/hbone/idle_memory.sh", "{build}", "1000", "3000", "10000"], 85),
    Part("gobind", "bindings/go: one call onto a running runtime loop (Loop.do)",
         ["{py}", "bench/parts/gobind.py", "{build}"], 15),
    Part("e2e", "node proxy end to end (capture + HBONE between two pod netns) vs direct",
         ["bash", "bench/e2e/node_proxy_bench.sh", "{build}", "{seconds}", "{rounds}"], 30,
         root=True),
    Part("services", "node proxy: pod A -> service VIP (endpoint picked), and VIP -> "
         "examples/waypoint -> endpoint, vs pod A -> pod IP",
         ["bash", "bench/e2e/services_bench.sh", "{build}", "300"], 35, root=True),
    Part("attack", "the attack suite's figures: loop CPU out of descriptors, a legitimate "
         "tunnel during each attack, descriptors and memory afterwards, 5,000 idle tunnels",
         ["{py}", "bench/parts/attack.py", "{build}", "5000"], 60),
    Part("dns", "DNS proxy: mesh name and forwarded name vs dnsmasq answering directly",
         ["{py}", "bench/parts/dns.py", "{build}", "2"], 45),
]


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bench.py", description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="build directory (default: build)")
    ap.add_argument("--tls-build", default=os.environ.get("TLS_BUILD", "build-openssl"),
                    help="a build with the other TLS library, measured beside --build by the "
                         "floors, pair and tls parts when it exists (default: build-openssl; "
                         "env TLS_BUILD; '' for none)")
    ap.add_argument("--parts", default=os.environ.get("BENCH", ""),
                    help="comma-separated parts to run (default: all; env BENCH)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per measurement (default 3)")
    ap.add_argument("--seconds", type=int, default=3,
                    help="seconds per throughput run (default 3)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--list", action="store_true", help="list the parts and exit")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    ap.add_argument("--no-report", action="store_true", help="do not draw charts or RESULTS.md")
    ap.add_argument("--baseline", help="build directory of the commit to compare with")
    ap.add_argument("--compare", default=os.path.join(ROOT, "bench", "BEFORE-AFTER.md"),
                    help="with --baseline: the markdown file to write")
    a = ap.parse_args(argv)
    if a.rounds < 1 or a.rounds > 20:
        ap.error("--rounds must be 1..20")
    if a.seconds < 1 or a.seconds > 60:
        ap.error("--seconds must be 1..60")
    known = [p.name for p in PARTS]
    wanted = [w.strip() for w in a.parts.split(",") if w.strip()] if a.parts else known
    unknown = [w for w in wanted if w not in known]
    if unknown:
        ap.error(f"unknown part(s) {', '.join(unknown)}; parts: {', '.join(known)}")
    a.selected = [p for p in PARTS if p.name in wanted]  # in list order, no duplicates
    if a.baseline and not os.path.isfile(os.path.join(a.baseline, "CMakeCache.txt")):
        ap.error(f"--baseline {a.baseline}: not a build directory (no CMakeCache.txt)")
    return a


def command(part, a, build=None, rounds=None):
    # (a before/after run compares one library's builds: no second library)
    other = os.path.abspath(a.tls_build) if a.tls_build and not a.baseline else "-"
    subst = {"build": os.path.abspath(build or a.build), "tls_build": other,
             "rounds": str(rounds or a.rounds),
             "seconds": str(a.seconds), "py": PY}
    return [c.format(**subst) for c in part.cmd]


def sh(cmd):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, cwd=ROOT).stdout.strip()
    except OSError:
        return ""


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def time_wait():
    """TIME_WAIT sockets now (the kernel table that skews connection rates)."""
    try:
        with open("/proc/net/sockstat") as f:
            m = re.search(r"\btw (\d+)", f.read())
            return int(m.group(1)) if m else None
    except OSError:
        return None


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    distro = ""
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release") as f:
            m = re.search(r'PRETTY_NAME="([^"]*)"', f.read())
        distro = m.group(1) if m else ""
    return {"cpu_model": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "memory_gib": round(mem_kb / 1048576, 1), "os": distro}


def merge(lines):
    """Merges figure lines by name: values add up as rounds."""
    figs = {}
    for rec in lines:
        f = figs.get(rec["name"])
        if f is None:
            f = figs[rec["name"]] = {k: v for k, v in rec.items() if k not in ("values", "cdf")}
            f["values"] = []
            f["cdfs"] = []
        f["values"].extend(rec["values"])
        if rec.get("cdf"):
            f["cdfs"].append(rec["cdf"])
    out = []
    for f in figs.values():
        v = f["values"]
        if v:
            f.update(min=min(v), median=statistics.median(v), max=max(v), rounds=len(v))
        if not f["cdfs"]:
            del f["cdfs"]
        out.append(f)
    return out


def run_once(part, cmd, i, n, rounds, tag=""):
    """Runs one part's program; returns (exit code, its valid figure lines)."""
    fd, figfile = tempfile.mkstemp(prefix=f"bench-{part.name}-", suffix=".jsonl")
    os.close(fd)
    env = dict(os.environ, BENCH_FIGURES=figfile, BENCH_ROUNDS=str(rounds),
               PATH="/usr/bin:/bin:/usr/sbin:/sbin:" + os.environ.get("PATH", ""))
    label = f"{i}/{n} {part.name}{tag}"
    try:
        with subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
            for line in proc.stdout:
                print(f"  [{label}] {line}", end="", flush=True)
            rc = proc.wait()
    except OSError as e:
        print(f"  [{label}] cannot run {cmd[0]}: {e}", flush=True)
        rc = 127
    lines = []
    with open(figfile) as f:
        for raw in f:
            try:
                rec = json.loads(raw)
                ok = (isinstance(rec, dict) and isinstance(rec.get("name"), str)
                      and isinstance(rec.get("unit"), str) and isinstance(rec.get("values"), list)
                      and all(isinstance(v, (int, float)) for v in rec["values"]))
            except ValueError:
                ok = False
            if ok:
                lines.append(rec)
            else:
                print(f"  [{label}] bad figure line ignored: {raw.strip()[:80]}")
    os.unlink(figfile)
    return rc, lines


def as_baseline(rec):
    """A baseline build's figure line, renamed "baseline.<name>"; its peer and floor
    references point at the baseline's figures of the same run."""
    out = dict(rec, name="baseline." + rec["name"])
    for k in ("peer", "floor"):
        if out.get(k) and "/" not in out[k]:
            out[k] = "baseline." + out[k]
        elif out.get(k):
            del out[k]
    return out


def run_part(part, i, n, a, t_start):
    cmd = command(part, a)
    elapsed = time.time() - t_start
    print(f"\n=== [{i}/{n}] {part.name}: {part.what} (about {part.seconds} s; "
          f"{elapsed / 60:.1f} min so far)", flush=True)
    if part.root and os.geteuid() != 0:
        print(f"[{i}/{n}] {part.name}: skipped, needs root", flush=True)
        return {"name": part.name, "what": part.what, "status": "skipped (needs root)",
                "command": cmd, "seconds": 0, "figures": []}
    load0 = loadavg()
    t0 = time.time()
    if not a.baseline:
        rc, lines = run_once(part, cmd, i, n, a.rounds)
    else:
        # One round at a time, baseline and this build alternating which goes
        # first, so both see the same load.
        rc, lines = 0, []
        base_cmd = command(part, a, build=a.baseline, rounds=1)
        this_cmd = command(part, a, rounds=1)
        for r in range(a.rounds):
            order = [("baseline", base_cmd), ("", this_cmd)]
            for tag, c in (order if r % 2 == 0 else order[::-1]):
                rc1, got = run_once(part, c, i, n, 1, f" {tag or 'this'} round {r + 1}")
                rc = rc or rc1
                lines += [as_baseline(x) for x in got] if tag else got
    secs = time.time() - t0
    figures = merge(lines)
    status = "ok" if rc == 0 else f"failed (exit {rc})"
    print(f"=== [{i}/{n}] {part.name}: {status}, {len(figures)} figures, {secs:.0f} s", flush=True)
    return {"name": part.name, "what": part.what, "status": status,
            "command": " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c
                                for c in cmd),
            "seconds": round(secs, 1), "load_before": load0, "load_after": loadavg(),
            "figures": figures}


def prune_compares(out_dir):
    """Removes before/after runs but the latest (other results are left alone)."""
    compares = sorted(n for n in os.listdir(out_dir)
                      if re.match(r"^compare-\d{8}T\d{6}Z\.json$", n))
    for name in compares[:-1]:
        os.unlink(os.path.join(out_dir, name))


def prune(out_dir, keep_stamp, keep_full_stamp):
    """Removes results other than the latest full run and a newer partial run."""
    for name in os.listdir(out_dir):
        m = re.match(r"^(\d{8}T\d{6}Z)(\.json)?$", name)
        if not m or m.group(1) in (keep_stamp, keep_full_stamp):
            continue
        path = os.path.join(out_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def latest_full(out_dir):
    best = None
    for name in sorted(os.listdir(out_dir)):
        if re.match(r"^\d{8}T\d{6}Z\.json$", name):
            try:
                with open(os.path.join(out_dir, name)) as f:
                    full = json.load(f).get("full")
                if full:
                    best = name[:-5]
            except ValueError:
                pass
    return best


def main(argv):
    a = parse_args(argv)
    if a.list:
        for p in PARTS:
            print(f"{p.name:10} {p.what}{' (root)' if p.root else ''}")
        return 0
    n = len(a.selected)
    if a.dry_run:
        for i, p in enumerate(a.selected, 1):
            print(f"[{i}/{n}] {p.name}: {' '.join(command(p, a))}")
        return 0
    full = len(a.selected) == len(PARTS) and not a.baseline
    os.makedirs(a.out, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    commit = sh(["git", "rev-parse", "HEAD"])
    dirty = bool(sh(["git", "status", "--porcelain", "--untracked-files=no"]))
    print(f"make bench: {n} part(s): {', '.join(p.name for p in a.selected)}; "
          f"{a.rounds} rounds; build {a.build}; commit {commit[:12]}{' (dirty)' if dirty else ''}; "
          f"expected about {sum(p.seconds for p in a.selected) / 60:.0f} min", flush=True)
    result = {
        "format": "ambient-bench/1", "started": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "full": full, "rounds": a.rounds, "seconds_per_throughput_run": a.seconds,
        "commit": commit, "dirty": dirty, "machine": machine(),
        "build_type": sh(["sh", "-c", f"sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "
                          f"'{os.path.abspath(a.build)}/CMakeCache.txt'"]),
        "load_before": loadavg(), "time_wait_before": time_wait(), "parts": [],
    }
    if a.baseline:
        src = sh(["sh", "-c", f"sed -n 's/^CMAKE_HOME_DIRECTORY:[A-Z]*=//p' "
                  f"'{os.path.abspath(a.baseline)}/CMakeCache.txt'"])
        result["baseline"] = {
            "build": os.path.abspath(a.baseline),
            "commit": sh(["git", "-C", src, "rev-parse", "HEAD"]) if src else "",
            "build_type": sh(["sh", "-c", f"sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "
                              f"'{os.path.abspath(a.baseline)}/CMakeCache.txt'"]),
        }
        print(f"make bench: before/after: baseline {a.baseline} "
              f"(commit {result['baseline']['commit'][:12]}) vs this build", flush=True)
    t_start = time.time()
    for i, p in enumerate(a.selected, 1):
        result["parts"].append(run_part(p, i, n, a, t_start))
    result["load_after"] = loadavg()
    result["time_wait_after"] = time_wait()
    result["finished"] = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    result["seconds"] = round(time.time() - t_start, 1)
    path = os.path.join(a.out, ("compare-" if a.baseline else "") + stamp + ".json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    failed = [p["name"] for p in result["parts"] if p["status"].startswith("failed")]
    skipped = [p["name"] for p in result["parts"] if p["status"].startswith("skipped")]
    print(f"\nmake bench: {len(result['parts'])} part(s) in {result['seconds'] / 60:.1f} min; "
          f"results {os.path.relpath(path, ROOT)}"
          + (f"; FAILED: {', '.join(failed)}" if failed else "")
          + (f"; skipped (not root): {', '.join(skipped)}" if skipped else ""), flush=True)
    rc = 1 if failed else 0
    if a.baseline and not a.no_report:
        cmd = [PY, os.path.join(ROOT, "scripts", "bench_compare.py"), path,
               "--markdown", a.compare]
        print("+ " + " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c
                              for c in cmd), flush=True)
        if subprocess.call(cmd) != 0:
            rc = 1
    elif not a.no_report:
        cmd = [PY, os.path.join(ROOT, "scripts", "bench_report.py"), path,
               "--charts", os.path.join(a.out, stamp)]
        if full and os.path.abspath(a.out) == os.path.join(ROOT, "bench", "results"):
            cmd += ["--markdown", os.path.join(ROOT, "bench", "RESULTS.md"),
                    "--readme", os.path.join(ROOT, "README.md"), "--summary"]
        else:
            cmd += ["--summary"]
        print("+ " + " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c
                              for c in cmd), flush=True)
        if subprocess.call(cmd) != 0:
            rc = 1
    if os.path.abspath(a.out) == os.path.join(ROOT, "bench", "results"):
        if a.baseline:
            prune_compares(a.out)
        else:
            prune(a.out, stamp, latest_full(a.out))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
