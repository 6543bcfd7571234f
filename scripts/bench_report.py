#!/usr/bin/python3
"""bench_report.py: charts, goals and bench/RESULTS.md from one `make bench` results file.

  scripts/bench_report.py RESULTS.json [--charts DIR] [--markdown FILE]
                          [--readme FILE] [--summary] [--no-charts]

--charts DIR    draws the PNG charts (gnuplot) into DIR
--markdown FILE writes the report (tables, charts, goals met / not met, how to
                reproduce each figure, what we learned) to FILE
--readme FILE   replaces the headline table between the markers
                <!-- bench-headline:begin --> and <!-- bench-headline:end --> in FILE
--summary       prints the goals and the headline figures to stdout
Exits 1 when the results file cannot be read or a chart cannot be drawn; a
missing figure makes its goal "not measured", never "met".
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# How to reproduce each part by hand (the runner's command is in the JSON too).
REPRODUCE = {
    "floors": "bash bench/hbone/loopback_floor.sh 3 3; "
              "build/bench/hbone/hbone_bench --benchmark_filter=AesGcm",
    "identity": "build/bench/identity/identity_bench --benchmark_repetitions=3 "
                "--benchmark_enable_random_interleaving=true",
    "redirect": "build/bench/redirect/redirect_apply_bench --samples 25 --pods 300  # root",
    "netns": "build/bench/netns/netns_zds_bench 500  # root",
    "authz": "build/bench/authz/authz_bench --benchmark_repetitions=3",
    "hbone": "build/bench/hbone/hbone_bench "
             "--benchmark_filter='BM_(Core|Ecdsa|X25519|Pooled|NewConnection)' "
             "--benchmark_repetitions=3 --benchmark_enable_random_interleaving=true",
    "pair": "bash bench/hbone/pair_bench.sh build 3 3",
    "idle": "bash bench/hbone/idle_memory.sh build 1000 3000 10000",
    "gobind": "cd bindings/go && go test -run XXX -bench LoopDo -count 3 .  "
              "# with PKG_CONFIG_PATH=build/pkgconfig as in scripts/test-bindings.sh",
    "e2e": "bash bench/e2e/node_proxy_bench.sh build 3 3  # root",
    "services": "bash bench/e2e/services_bench.sh build 300  # root",
    "dns": "build/bench/dns/dns_bench --seconds 2  # three times; needs dnsmasq",
    "attack": "python3 bench/parts/attack.py build 5000",
    "tls": "python3 bench/parts/tls.py build build-openssl  # after make openssl-bench-build",
}

LEARNED = os.path.join(ROOT, "bench", "LEARNED.md")


class Results:
    def __init__(self, data):
        self.data = data
        self.figs = {}
        for part in data.get("parts", []):
            for f in part.get("figures", []):
                self.figs[f"{part['name']}/{f['name']}"] = f

    def get(self, key):
        return self.figs.get(key)

    def median(self, key):
        f = self.figs.get(key)
        return None if f is None or "median" not in f else f["median"]

    def resolve(self, part, ref):
        """A figure's peer/floor reference: "name" in the same part or "part/name"."""
        if ref is None:
            return None
        return ref if "/" in ref else f"{part}/{ref}"


def fmt(v, unit=""):
    if v is None:
        return "—"
    a = abs(v)
    if a >= 1e6:
        s = f"{v / 1e6:.2f} M"
    elif a >= 1e4:
        s = f"{v / 1e3:.1f} k"
    elif a >= 100:
        s = f"{v:.0f}"
    elif a >= 10:
        s = f"{v:.1f}"
    elif a >= 1:
        s = f"{v:.2f}"
    else:
        s = f"{v:.3g}"
    return f"{s} {unit}".strip() if unit else s


# ---------------------------------------------------------------- goals

def ratio(r, a, b):
    x, y = r.median(a), r.median(b)
    if x is None or y is None or y == 0:
        return None
    return x / y


def goals(r):
    """Each goal: (area, text, measured text, met: True/False/None)."""
    out = []

    def add(area, text, value, ok, shown):
        out.append((area, text, shown if value is not None else "not measured",
                    None if value is None else ok(value)))

    for side, limit in (("server", 1.10), ("client", 1.15)):
        x = ratio(r, f"pair/pair.{side}_cpu.ambient", f"floors/relay_{side}.core_s_per_gb")
        add("hbone", f"HBONE {side} side CPU per GB within {round((limit - 1) * 100)} % of the "
            f"floor (loopback send+recv + AES-128-GCM {'open' if side == 'server' else 'seal'})",
            x, lambda v, limit=limit: v <= limit,
            f"{fmt(r.median(f'pair/pair.{side}_cpu.ambient'))} vs floor "
            f"{fmt(r.median(f'floors/relay_{side}.core_s_per_gb'))} core-s/GB = "
            f"{fmt(x)}x" if x is not None else "")
    x = ratio(r, "pair/pingpong.added_p50.ambient", "pair/pingpong.added_p50.go")
    add("hbone", "added 64-byte ping-pong latency (p50, pair minus direct) <= half the Go pair's",
        x, lambda v: v <= 0.5,
        f"+{fmt(r.median('pair/pingpong.added_p50.ambient'))} µs vs Go "
        f"+{fmt(r.median('pair/pingpong.added_p50.go'))} µs = {fmt(x)}x" if x is not None else "")
    x = r.median("hbone/BM_PooledStreamWindow/32.streams_per_s")
    add("hbone", "pooled streams >= 20,000/s (32 in flight on one connection; upstream spread "
        "over 16 ports)", x, lambda v: v >= 20000, f"{fmt(x)}/s wall clock" + cpu_bound(r))
    x = r.median("hbone/BM_PooledStream.p50_us")
    add("hbone", "pooled stream p50 <= 50 µs (sequential, new stream + 1-byte echo + close)",
        x, lambda v: v <= 50, f"{fmt(x)} µs wall clock (load average "
        f"{hbone_load(r)} during the part)")
    x = r.median("hbone/BM_NewConnection.p50_us")
    add("hbone", "new connection (mTLS + HTTP/2 + CONNECT + first byte) p50 <= 0.5 ms", x,
        lambda v: v <= 500, f"{fmt(x)} µs")
    libs = tls_libs(r)
    if len(libs) == 2:
        lib = libs[1]
        x = r.median(f"tls/tls.new_connection_p50.{lib}")
        bare = r.median(f"tls/tls.bare_handshake.{lib}")
        add("tls", f"new connection p50 <= 0.5 ms with {LIB_NAMES.get(lib, lib)} (same part, "
            "loopback)", x, lambda v: v <= 500,
            f"{fmt(x)} µs; floor: the library's own mutual handshake, no ambient code, costs "
            f"{fmt(bare)} µs of CPU ({fmt(ratio(r, f'tls/tls.bare_handshake.{lib}', f'tls/tls.bare_handshake.{libs[0]}'))}x "
            f"{LIB_NAMES.get(libs[0], libs[0])}'s), and ambient's sans-IO connection is "
            f"{fmt(ratio(r, f'tls/tls.core_handshake.{lib}', f'tls/tls.bare_handshake.{lib}'))}x it"
            if x is not None and bare else "")
    xs = [ratio(r, "pair/pair.gbps.ambient", f"pair/pair.gbps.{k}") for k in ("go", "stunnel")]
    x = min(xs) if all(v is not None for v in xs) else None
    add("hbone", "pair throughput >= 2x both the Go pair and stunnel (one stream)", x,
        lambda v: v >= 2.0, f"{fmt(xs[0])}x Go, {fmt(xs[1])}x stunnel" if x is not None else "")
    n = idle_max_count(r)
    for side in ("client", "server"):
        x = r.median(f"idle/idle.{side}_kib.ambient.n{n}") if n else None
        add("hbone", f"<= 4 KiB user-space memory per idle tunnelled connection at 10,000, "
            f"{side} side", x, lambda v: v <= 4.0,
            f"{fmt(x)} KiB at N={n} (Go {fmt(r.median(f'idle/idle.{side}_kib.go.n{n}'))} KiB)"
            + ("" if n == 10000 else f"; measured up to N={n} only"))
    x = r.median("identity/BM_SpiffeIdParse.cpu")
    add("identity", ">= 5 M SPIFFE ID parses/s per core (owning SpiffeId::Parse)", x,
        lambda v: 1e9 / v >= 5e6, f"{fmt(1e9 / x)}/s" if x else "")
    x = ratio(r, "identity/BM_VerifyX509Svid.cpu", "identity/BM_Peer_BareX509VerifyCert.cpu")
    add("identity", "SPIFFE checks add <= 10 % over bare X509_verify_cert", x,
        lambda v: v <= 1.10, f"{fmt(x)}x the bare verification's CPU")
    x = r.median("redirect/apply.p50.native")
    add("redirect", "native in-pod rule install p50 <= 2 ms", x, lambda v: v <= 2.0,
        f"{fmt(x)} ms")
    x = r.median("redirect/ratio.iptables_restore_over.native")
    add("redirect", "native >= 20x faster than `ip netns exec NS iptables-restore` (p50)", x,
        lambda v: v >= 20, f"{fmt(x)}x")
    x = r.median("redirect/ratio.iptables_restore_over.ambientctl_static")
    add("redirect", "whole `ambientctl-static rules apply` process >= 10x faster than the "
        "iptables-restore exec", x, lambda v: v >= 10,
        f"{fmt(x)}x (no process can beat "
        f"{fmt(r.median('redirect/ratio.iptables_restore_over.floor_noop'))}x here: "
        "the static no-op binary)")
    x = r.median("netns/zds_add.listeners.p50")
    add("netns", "ZDS Add->Ack including the pod's listener set p50 <= 1 ms", x,
        lambda v: v <= 1000, f"{fmt(x)} µs")
    # attack: the worst round of every test counts, not the median.
    def worst(suffix):
        vals = [v for k, f in r.figs.items() if k.startswith("attack/") and k.endswith(suffix)
                for v in f.get("values", [])]
        return max(vals) if vals else None
    x = worst(".legit_tunnel_ms")
    add("attack", "a legitimate tunnel completes within 1 s during every attack (worst round)",
        x, lambda v: v <= 1000, f"{fmt(x)} ms at worst")
    x = worst(".loop_cpu_ms_per_600ms")
    add("attack", "accept() out of descriptors: the loop stays under 200 ms of CPU per 600 ms",
        x, lambda v: v <= 200, f"{fmt(x)} ms at worst")
    x = worst(".fds_above_baseline_after")
    add("attack", "descriptors back to the baseline after each attack", x, lambda v: v <= 0,
        f"{fmt(x)} above at worst")
    return out


LIB_NAMES = {"boringssl": "BoringSSL", "openssl": "OpenSSL 3"}


def tls_libs(r):
    """The TLS libraries of the tls part: [the main build's, the other build's]."""
    libs = []
    for k, f in r.figs.items():
        m = re.match(r"tls/tls\.core_handshake\.(\w+)$", k)
        if m:
            libs.insert(0 if not f.get("peer") else len(libs), m.group(1))
    return libs


def tls_table(r):
    """The same-run comparison of the two TLS libraries: [(what, lib0, lib1, ratio)]."""
    libs = tls_libs(r)
    if len(libs) != 2:
        return []
    a, b = libs
    rows = []

    def row(what, key_a, key_b, unit):
        va, vb = r.median(key_a), r.median(key_b)
        rows.append((what, fmt(va, unit), fmt(vb, unit),
                     f"{fmt(vb / va)}x" if va and vb else "—"))

    def tls(what, name, unit):
        row(what, f"tls/tls.{name}.{a}", f"tls/tls.{name}.{b}", unit)

    tls("new connection (mTLS + HTTP/2 + CONNECT + first byte) p50, loopback, wall clock",
        "new_connection_p50", "µs")
    tls("server thread CPU per new connection", "new_connection_server_cpu", "µs")
    tls("new connection sans IO, both ends, CPU", "core_handshake", "µs")
    tls("floor: the library's bare mutual TLS 1.3 handshake, both ends, CPU", "bare_handshake",
        "µs")
    rows.append(("ambient over the bare handshake (sans-IO connection / floor)",
                 *(f"{fmt(ratio(r, f'tls/tls.core_handshake.{x}', f'tls/tls.bare_handshake.{x}'))}x"
                   for x in (a, b)), "—"))
    tls("whole new connections per core-second", "handshakes_per_core_s", "/s")
    tls("ECDSA P-256 sign", "ecdsa_sign", "µs")
    tls("ECDSA P-256 verify", "ecdsa_verify", "µs")
    tls("X25519 keygen + derive", "x25519", "µs")
    row("AES-128-GCM seal, one core (16 KiB records)", "floors/aes128gcm.seal.core_s_per_gb",
        f"floors/aes128gcm.seal.core_s_per_gb.{b}", "core-s/GB")
    row("AES-128-GCM open, one core", "floors/aes128gcm.open.core_s_per_gb",
        f"floors/aes128gcm.open.core_s_per_gb.{b}", "core-s/GB")
    tls("bulk through the in-memory core, both ends, CPU per GB", "core_bulk", "core-s/GB")
    tls("its floor: AES-128-GCM seal + open", "core_bulk_floor", "core-s/GB")
    row("pair throughput, one stream (iperf3 over loopback)", "pair/pair.gbps.ambient",
        f"pair/pair.gbps.ambient-{b}", "Gbit/s")
    for side in ("client", "server"):
        row(f"pair {side} side CPU per GB", f"pair/pair.{side}_cpu.ambient",
            f"pair/pair.{side}_cpu.ambient-{b}", "core-s/GB")
        row(f"its floor: loopback send+recv + AES-128-GCM {'seal' if side == 'client' else 'open'}",
            f"floors/relay_{side}.core_s_per_gb", f"floors/relay_{side}.core_s_per_gb.{b}",
            "core-s/GB")
    row("new tunnel per TCP connection through the pair (pooled HBONE connection)",
        "pair/conns.per_s.ambient", f"pair/conns.per_s.ambient-{b}", "/s")
    row("added 64 B ping-pong latency p50 (pair minus direct)", "pair/pingpong.added_p50.ambient",
        f"pair/pingpong.added_p50.ambient-{b}", "µs")
    return rows


def idle_max_count(r):
    """The largest connection count of the idle part (10,000 in `make bench`)."""
    counts = [int(m.group(1)) for m in
              (re.match(r"idle/idle\.server_kib\.ambient\.n(\d+)$", k) for k in r.figs) if m]
    return max(counts) if counts else None


def cpu_bound(r):
    """What the pooled-stream CPU costs allow when each proxy thread has a core."""
    cpu = r.median("hbone/BM_PooledStreamWindow/32.cpu")  # client thread, ns per 32 streams
    srv = r.median("hbone/BM_PooledStreamWindow/32.server_cpu_us")
    if not cpu or not srv:
        return ""
    cli = cpu / 32 / 1000
    return (f"; CPU per stream: client thread {fmt(cli)} µs, server thread {fmt(srv)} µs, "
            f"i.e. {fmt(1e6 / max(cli, srv))}/s if each had a core of its own")


def hbone_load(r):
    for p in r.data.get("parts", []):
        if p["name"] == "hbone" and p.get("load_before"):
            return p["load_before"][0]
    return "?"


def mark(ok):
    return {True: "**met**", False: "**not met**", None: "—"}[ok]


# ---------------------------------------------------------------- charts

GP_HEAD = """set terminal pngcairo size 900,520 font "DejaVu Sans,10"
set output '{out}'
set title "{title}"
set grid ytics
set key top left
set style fill solid 0.7 border -1
num(v) = v >= 100 ? sprintf("%.0f", v) : (v >= 10 ? sprintf("%.1f", v) : sprintf("%.2f", v))
"""


def bars(rows, out, title, ylabel, logscale=False, note="", goal=None):
    """rows: [(label, median, min, max)]; one bar each with a min-max range."""
    rows = [r for r in rows if r[1] is not None]
    if not rows:
        return None
    data = "\n".join(f'{i} "{lab}" {med} {lo} {hi}' for i, (lab, med, lo, hi) in enumerate(rows))
    gp = GP_HEAD.format(out=out, title=title) + f"""
set ylabel "{ylabel}"
set boxwidth 0.6
set xrange [-0.6:{len(rows) - 0.4}]
set xtics rotate by -25 scale 0
{"set logscale y" if logscale else "set yrange [0:*]"}
{f"set yrange [*:{max([goal[0]] + [x[3] for x in rows]) * (2 if logscale else 1.15)}]" if goal else ""}
unset key
{f'set label 1 "{note}" at graph 0.01, graph -0.32 font ",9"' if note else ''}
{goal_line(goal)}
set bmargin 8
$d << EOD
{data}
EOD
plot $d using 1:3:xtic(2) with boxes lc rgb "#4472c4", \\
     $d using 1:3:4:5 with yerrorbars lc rgb "black" pt 0, \\
     $d using 1:5:(num($3)) with labels offset 0,0.7 font ",9"
"""
    return gp


def goal_line(goal):
    """goal: (value, text) -> a dashed red line across the chart."""
    if not goal:
        return ""
    v, text = goal
    return (f'set arrow from graph 0, first {v} to graph 1, first {v} nohead dt 2 lc rgb "red"\n'
            f'set label "{text}" at graph 0.02, first {v * 1.15} tc rgb "red"')


def grouped(rows, series, out, title, ylabel, logscale=False):
    """rows: [(label, [(median, min, max) per series])]; clustered bars."""
    rows = [r for r in rows if any(v[0] is not None for v in r[1])]
    if not rows:
        return None
    n = len(series)
    w = 0.8 / n
    lines = []
    for i, (lab, vals) in enumerate(rows):
        cols = " ".join(f"{v[0] if v[0] is not None else 'NaN'} {v[1] if v[1] is not None else 'NaN'} "
                        f"{v[2] if v[2] is not None else 'NaN'}" for v in vals)
        lines.append(f'{i} "{lab}" {cols}')
    colors = ["#4472c4", "#ed7d31", "#a5a5a5", "#70ad47"]
    plots = []
    for s, name in enumerate(series):
        off = (s - (n - 1) / 2) * w
        c = 3 + 3 * s
        plots.append(f'$d using ($1+{off}):{c}:({w * 0.95}){":xtic(2)" if s == 0 else ""} '
                     f'with boxes lc rgb "{colors[s % 4]}" title "{name}"')
        plots.append(f'$d using ($1+{off}):{c}:{c + 1}:{c + 2} with yerrorbars lc rgb "black" '
                     f'pt 0 notitle')
        plots.append(f'$d using ($1+{off}):{c + 2}:(num(${c})) with labels '
                     f'offset 0,0.6 font ",8" notitle')
    gp = GP_HEAD.format(out=out, title=title) + f"""
set ylabel "{ylabel}"
set xrange [-0.6:{len(rows) - 0.4}]
set xtics scale 0 rotate by -20
set bmargin 6
{"set logscale y" if logscale else "set yrange [0:*]"}
$d << EOD
{chr(10).join(lines)}
EOD
plot {", ".join(plots)}
"""
    return gp


def stat(r, key):
    f = r.get(key)
    if not f or "median" not in f:
        return (None, None, None)
    return (f["median"], f["min"], f["max"])


def chart_scripts(r, d):
    """Returns {file name: gnuplot script}."""
    s = {}
    kinds = [("ambient", "ambient"), ("go", "Go stdlib"), ("stunnel", "stunnel")]
    rows = [("loopback TCP (floor)",) + stat(r, "floors/loopback.gbps")]
    rows += [(f"{lab} pair",) + stat(r, f"pair/pair.gbps.{k}") for k, lab in kinds]
    rows += [("pods, direct",) + stat(r, "e2e/e2e.gbps.direct"),
             ("pods, node proxy",) + stat(r, "e2e/e2e.gbps.mesh")]
    s["throughput.png"] = bars(rows, os.path.join(d, "throughput.png"),
                               "One-stream throughput (iperf3), median and min-max of rounds",
                               "Gbit/s")
    rows = [("floor (loopback + AES-GCM)", [stat(r, "floors/relay_client.core_s_per_gb"),
                                             stat(r, "floors/relay_server.core_s_per_gb")])]
    rows += [(lab, [stat(r, f"pair/pair.client_cpu.{k}"), stat(r, f"pair/pair.server_cpu.{k}")])
             for k, lab in kinds]
    s["cpu_per_gb.png"] = grouped(rows, ["client side", "server side"],
                                  os.path.join(d, "cpu_per_gb.png"),
                                  "CPU per GB carried, per side (user+sys from /proc), "
                                  "next to the floor", "core-seconds per GB")
    curves = []
    for k, lab in [("direct", "direct (no pair)")] + kinds:
        f = r.get(f"pair/pingpong.p50.{k}")
        if f and f.get("cdfs"):
            curves.append((lab, f["cdfs"][0]))
    if curves:
        blocks = []
        plots = []
        for i, (lab, cdf) in enumerate(curves):
            blocks.append(f"$c{i} << EOD\n" + "\n".join(f"{v} {p}" for p, v in cdf if v > 0)
                          + "\nEOD")
            plots.append(f'$c{i} using 1:2 with steps lw 2 title "{lab}"')
        s["latency_cdf.png"] = GP_HEAD.format(
            out=os.path.join(d, "latency_cdf.png"),
            title="64-byte ping-pong round trip through each pair: distribution (first round)") + \
            f"""
set xlabel "round-trip time (µs, log scale)"
set ylabel "percentile"
set logscale x
set yrange [0:100]
set key bottom right
{chr(10).join(blocks)}
plot {", ".join(plots)}
"""
    rows = [("pooled, 32 in flight", ) + stat(r, "hbone/BM_PooledStreamWindow/32.streams_per_s"),
            ("pooled, batches of 32",) + stat(r, "hbone/BM_PooledStreamBatch/32.streams_per_s"),
            ("pooled, sequential",) + stat(r, "hbone/BM_PooledStream.streams_per_s"),
            ("new mTLS connection",) + stat(r, "hbone/BM_NewConnection.conns_per_s")]
    rows += [(f"{lab} pair, new tunnel/TCP conn",) + stat(r, f"pair/conns.per_s.{k}")
             for k, lab in kinds]
    rows += [("direct TCP conn (no pair)",) + stat(r, "pair/conns.per_s.direct")]
    s["rates.png"] = bars(rows, os.path.join(d, "rates.png"),
                          "New streams and connections per second, median and min-max of rounds",
                          "per second (log scale)", logscale=True,
                          goal=(20000, "goal: pooled streams >= 20,000/s"))
    names = [("native", "library (nftables)"), ("lib_iptables", "library (iptables)"),
             ("ambientctl_static", "ambientctl-static"), ("ambientctl", "ambientctl"),
             ("iptables_restore", "netns exec iptables-restore"), ("nft", "netns exec nft -f"),
             ("floor_noop", "static no-op process"), ("floor_true", "/bin/true")]
    rows = [(lab, [stat(r, f"redirect/apply.p50.{k}"), stat(r, f"redirect/apply.p99.{k}")])
            for k, lab in names]
    s["rule_install.png"] = grouped(rows, ["p50", "p99"], os.path.join(d, "rule_install.png"),
                                    "Installing the in-pod rule set into a fresh netns, per pod",
                                    "ms (log scale)", logscale=True)
    series = []
    for k, lab in (("ambient", "ambient"), ("go", "Go stdlib")):
        for side in ("client", "server"):
            pts = []
            for name, f in r.figs.items():
                m = re.match(rf"idle/idle\.{side}_kib\.{k}\.n(\d+)$", name)
                if m and "median" in f:
                    pts.append((int(m.group(1)), f["median"]))
            if pts:
                series.append((f"{lab}, {side} side", sorted(pts)))
    if series:
        blocks, plots = [], []
        for i, (lab, pts) in enumerate(series):
            blocks.append(f"$m{i} << EOD\n" + "\n".join(f"{x} {max(y, 0.01)}" for x, y in pts)
                          + "\nEOD")
            plots.append(f'$m{i} using 1:2 with linespoints lw 2 pt 7 title "{lab}"')
        s["idle_memory.png"] = GP_HEAD.format(
            out=os.path.join(d, "idle_memory.png"),
            title="User-space memory per idle tunnelled connection (VmRSS growth / N)") + f"""
set xlabel "idle tunnelled connections (N, log scale)"
set ylabel "KiB per connection (log scale)"
set logscale xy
set offsets graph 0.05, graph 0.05, 0, 0
set key top right
{goal_line((4, "goal: 4 KiB"))}
{chr(10).join(blocks)}
plot {", ".join(plots)}
"""
    return {k: v for k, v in s.items() if v}


def draw(r, d):
    if not shutil.which("gnuplot"):
        print("bench_report: gnuplot missing (scripts/install-deps.sh installs gnuplot-nox)",
              file=sys.stderr)
        return None
    os.makedirs(d, exist_ok=True)
    made = []
    for name, gp in chart_scripts(r, d).items():
        with tempfile.NamedTemporaryFile("w", suffix=".gp", delete=False) as f:
            f.write(gp)
        p = subprocess.run(["gnuplot", f.name], stderr=subprocess.PIPE, text=True)
        os.unlink(f.name)
        if p.returncode != 0 or not os.path.exists(os.path.join(d, name)):
            print(f"bench_report: gnuplot failed for {name}: {p.stderr.strip()[:400]}",
                  file=sys.stderr)
            return None
        made.append(name)
    return made


# ---------------------------------------------------------------- markdown

def headline(r):
    """The few numbers a reader wants first: [(what, ours, peer or floor, ratio)]."""
    rows = []

    def row(what, ours, other, other_lab, unit, invert=None):
        """invert="faster"/"less": say how many times the peer's figure ours is."""
        a, b = r.median(ours), r.median(other) if other else None
        text = "—"
        if a and b:
            text = f"{fmt(b / a)}x {invert}" if invert else f"{fmt(a / b)}x"
        rows.append((what, fmt(a, unit), f"{other_lab} {fmt(b, unit)}" if other else "—", text))

    row("HBONE pair throughput, one stream", "pair/pair.gbps.ambient", "pair/pair.gbps.go",
        "Go", "Gbit/s")
    row("HBONE server side CPU per GB", "pair/pair.server_cpu.ambient",
        "floors/relay_server.core_s_per_gb", "floor", "core-s/GB")
    row("HBONE client side CPU per GB", "pair/pair.client_cpu.ambient",
        "floors/relay_client.core_s_per_gb", "floor", "core-s/GB")
    row("added 64 B ping-pong latency p50", "pair/pingpong.added_p50.ambient",
        "pair/pingpong.added_p50.go", "Go", "µs")
    row("pooled streams/s (32 in flight)", "hbone/BM_PooledStreamWindow/32.streams_per_s", None,
        "", "/s")
    row("new tunnel per TCP connection through the pair", "pair/conns.per_s.ambient",
        "pair/conns.per_s.go", "Go", "/s")
    n = idle_max_count(r)
    row(f"idle tunnelled connection, memory (server side, N={n})",
        f"idle/idle.server_kib.ambient.n{n}", f"idle/idle.server_kib.go.n{n}", "Go", "KiB",
        "less")
    row("in-pod rule install p50", "redirect/apply.p50.native",
        "redirect/apply.p50.iptables_restore", "iptables-restore", "ms", "faster")
    row("ZDS Add->Ack with listener set p50", "netns/zds_add.listeners.p50",
        "netns/zds_add.noop.p50", "no-op handler", "µs")
    row("node proxy end to end, one stream", "e2e/e2e.gbps.mesh", "e2e/e2e.gbps.direct",
        "direct", "Gbit/s")
    return rows


def table(rows, header):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def part_table(r, part):
    rows = []
    for f in part.get("figures", []):
        if f["name"].endswith(".real") or "median" not in f:
            continue
        peer = r.resolve(part["name"], f.get("peer"))
        floor = r.resolve(part["name"], f.get("floor"))
        vs = []
        for ref, what in ((peer, "peer"), (floor, "floor")):
            if ref and r.median(ref):
                vs.append(f"{fmt(f['median'] / r.median(ref))}x {what} `{ref.split('/', 1)[1]}`")
        rng = f"{fmt(f['min'])} – {fmt(f['max'])}" if f["rounds"] > 1 else ""
        rows.append((f"`{f['name']}`", fmt(f["median"]), rng, f["unit"], f["rounds"],
                     "; ".join(vs)))
    return table(rows, ["figure", "median", "min – max", "unit", "rounds", "vs"])


CHART_TEXT = [
    ("throughput.png", "Throughput next to the loopback floor"),
    ("cpu_per_gb.png", "CPU per GB per side next to the floor"),
    ("latency_cdf.png", "Ping-pong latency distribution"),
    ("rates.png", "New-connection and pooled-stream rates"),
    ("rule_install.png", "Rule install time vs iptables-restore and nft"),
    ("idle_memory.png", "Memory per idle connection vs count"),
]


def markdown(r, charts_rel, charts, stamp):
    d = r.data
    m = d.get("machine", {})
    lines = ["# Benchmark results", "",
             "<!-- Generated by scripts/bench_report.py from the results file named below; "
             "edit bench/LEARNED.md or the generator, not this file. -->", "",
             f"Run {d.get('started')} – {d.get('finished')} ({fmt(d.get('seconds', 0) / 60)} min), "
             f"commit `{d.get('commit', '')[:12]}`{' (uncommitted changes)' if d.get('dirty') else ''}, "
             f"build {d.get('build_type') or '?'}, {d.get('rounds')} rounds per measurement. "
             f"Machine: {m.get('cpu_model')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB, "
             f"kernel {m.get('kernel')}, {m.get('os')}. Load average before "
             f"{' '.join(str(x) for x in d.get('load_before', []))}, after "
             f"{' '.join(str(x) for x in d.get('load_after', []))}; sockets in TIME_WAIT before "
             f"{d.get('time_wait_before')}, after {d.get('time_wait_after')}.", "",
             f"Results file: [`{stamp}.json`]({os.path.dirname(charts_rel) or '.'}/{stamp}.json); "
             f"charts: `{charts_rel}/`.", "",
             "Reproduce everything with `make bench` (about 10 minutes on 2 cores, needs root "
             "for the netns parts), one part with `make bench BENCH=pair` (comma list: "
             "`BENCH=floors,pair`; parts: "
             + ", ".join(f"`{p['name']}`" for p in d.get("parts", [])) + "). "
             "This machine is shared and noisy: compare figures with the peer or floor "
             "measured in the same run (the ratios), not across runs.", ""]
    lines += ["## Goals", "", table([(a, t, v, mark(ok)) for a, t, v, ok in goals(r)],
                                    ["area", "goal", "measured (medians)", ""]), ""]
    lines += ["## Headline figures", "",
              table(headline(r), ["what", "ambient", "peer / floor", "ambient vs peer / floor"]), ""]
    libs = tls_libs(r)
    if len(libs) == 2:
        names = [LIB_NAMES.get(x, x) for x in libs]
        lines += ["## The two TLS libraries, same run", "",
                  f"libambient built with {names[0]} (`build/`) and with {names[1]} "
                  "(`-DAMBIENT_TLS=openssl`, `build-openssl/`), the two measured in the same "
                  "rounds (parts tls, floors and pair). CPU figures are per operation; the last "
                  f"column is {names[1]} / {names[0]}.", "",
                  table(tls_table(r), ["what", names[0], names[1], "ratio"]), ""]
    if charts:
        lines += ["## Charts", ""]
        for name, title in CHART_TEXT:
            if name in charts:
                lines += [f"### {title}", "", f"![{title}]({charts_rel}/{name})", ""]
    lines += ["## Every figure, by part", "",
              "Median, spread (min – max over the rounds) and the ratio to the figure it is "
              "compared with (its peer or floor, same run). Google Benchmark parts show CPU "
              "time per operation (`.cpu`) and the benchmark's counters.", ""]
    for part in d.get("parts", []):
        lines += [f"### {part['name']}: {part['what']}", "",
                  f"Status: {part['status']}, {fmt(part.get('seconds', 0))} s, load "
                  f"{' '.join(str(x) for x in part.get('load_before', []))} → "
                  f"{' '.join(str(x) for x in part.get('load_after', []))}. Reproduce: "
                  f"`make bench BENCH={part['name']}`, or by hand "
                  f"`{REPRODUCE.get(part['name'], part.get('command', ''))}`.", ""]
        if part.get("figures"):
            lines += [part_table(r, part), ""]
    if os.path.exists(LEARNED):
        with open(LEARNED) as f:
            lines += [f.read().rstrip(), ""]
    return "\n".join(lines)


def update_readme(path, r, results_rel, charts_dir):
    charts_rel = os.path.relpath(charts_dir, os.path.dirname(os.path.abspath(path)))
    with open(path) as f:
        text = f.read()
    begin, end = "<!-- bench-headline:begin -->", "<!-- bench-headline:end -->"
    if begin not in text or end not in text:
        print(f"bench_report: no {begin} ... {end} markers in {path}", file=sys.stderr)
        return False
    rows = headline(r)
    block = (f"{begin}\n" + table(rows, ["what", "ambient", "peer / floor", "ambient vs peer / floor"]) +
             f"\n\nFrom [`{results_rel}`]({results_rel}) (commit "
             f"`{r.data.get('commit', '')[:12]}`, {r.data.get('machine', {}).get('cores')} cores, "
             f"load {' '.join(str(x) for x in r.data.get('load_before', []))}); goals met / not "
             "met and every figure: [bench/RESULTS.md](bench/RESULTS.md); charts: "
             + ", ".join(f"[{t.lower()}]({charts_rel}/{n})" for n, t in CHART_TEXT
                         if os.path.exists(os.path.join(charts_dir, n)))
             + ".\n" + end)
    text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    with open(path, "w") as f:
        f.write(text)
    return True


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results")
    ap.add_argument("--charts")
    ap.add_argument("--markdown")
    ap.add_argument("--readme")
    ap.add_argument("--summary", action="store_true")
    ap.add_argument("--no-charts", action="store_true")
    a = ap.parse_args(argv)
    try:
        with open(a.results) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        print(f"bench_report: cannot read {a.results}: {e}", file=sys.stderr)
        return 1
    if not isinstance(data, dict) or not str(data.get("format", "")).startswith("ambient-bench/"):
        print(f"bench_report: {a.results} is not an ambient-bench results file", file=sys.stderr)
        return 1
    r = Results(data)
    charts = []
    stamp = os.path.splitext(os.path.basename(a.results))[0]
    charts_dir = a.charts or os.path.join(os.path.dirname(a.results), stamp)
    if not a.no_charts and (a.charts or a.markdown):
        charts = draw(r, charts_dir)
        if charts is None:
            return 1
    if a.markdown:
        rel = os.path.relpath(charts_dir, os.path.dirname(os.path.abspath(a.markdown)))
        with open(a.markdown, "w") as f:
            f.write(markdown(r, rel, charts, stamp))
        print(f"bench_report: wrote {a.markdown}" +
              (f" and {len(charts)} charts in {charts_dir}" if charts else ""))
    elif charts:
        print(f"bench_report: {len(charts)} charts in {charts_dir}")
    if a.readme:
        rel = os.path.relpath(os.path.abspath(a.results), os.path.dirname(os.path.abspath(a.readme)))
        if not update_readme(a.readme, r, rel, charts_dir):
            return 1
    if a.summary or not (a.markdown or a.readme):
        print(table([(ar, t, v, mark(ok).replace("*", "")) for ar, t, v, ok in goals(r)
                     if ok is not None], ["area", "goal", "measured", ""]))
        print()
        print(table(headline(r), ["what", "ambient", "peer / floor", "ambient vs peer / floor"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
