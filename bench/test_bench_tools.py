#!/usr/bin/python3
"""ctest bench.tools: the `make bench` runner's flags and part list, the figure
protocol, and the report generator on a small results file
(bench/testdata/sample-results.json). Runs no benchmark."""
import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # nothing written into the source tree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"
RUNNER = os.path.join(ROOT, "scripts", "bench.py")
REPORT = os.path.join(ROOT, "scripts", "bench_report.py")
SAMPLE = os.path.join(ROOT, "bench", "testdata", "sample-results.json")


def run(*args, env=None):
    return subprocess.run([PY, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, cwd=ROOT)


def load_json(path):
    with open(path) as f:
        return json.load(f)


def read_text(path):
    with open(path) as f:
        return f.read()


def load_runner():
    spec = importlib.util.spec_from_file_location("bench_runner", RUNNER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class RunnerTest(unittest.TestCase):
    def test_list_names_every_part(self):
        p = run(RUNNER, "--list")
        self.assertEqual(p.returncode, 0, p.stderr)
        names = [line.split()[0] for line in p.stdout.splitlines()]
        self.assertEqual(names, ["floors", "identity", "redirect", "netns", "authz", "xds", "hbone",
                                 "pair", "tls", "idle", "gobind", "e2e", "services", "attack",
                                 "dns"])

    def test_dry_run_picks_parts_in_list_order(self):
        p = run(RUNNER, "--dry-run", "--parts", "pair,hbone", "--build", "/tmp/b", "--rounds",
                "2", "--seconds", "4", "--tls-build", "/tmp/o")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 2)
        self.assertTrue(lines[0].startswith("[1/2] hbone: "), lines[0])
        self.assertIn("/tmp/b/bench/hbone/hbone_bench", lines[0])
        self.assertEqual(lines[1], "[2/2] pair: bash bench/hbone/pair_bench.sh /tmp/b 4 2 /tmp/o")

    def test_the_other_tls_build_goes_to_its_parts_but_not_to_a_baseline_run(self):
        env = dict(os.environ, TLS_BUILD="/tmp/env-o")
        p = run(RUNNER, "--dry-run", "--parts", "tls,floors", "--build", "/tmp/b", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.splitlines(), [
            "[1/2] floors: /usr/bin/python3 bench/parts/floors.py /tmp/b /tmp/env-o",
            "[2/2] tls: /usr/bin/python3 bench/parts/tls.py /tmp/b /tmp/env-o"])
        mod = load_runner()
        a = mod.parse_args(["--parts", "tls", "--build", "/tmp/b", "--tls-build", "/tmp/o"])
        self.assertEqual(mod.command(a.selected[0], a)[-1], "/tmp/o")
        a.baseline = "/tmp/base"
        self.assertEqual(mod.command(a.selected[0], a)[-1], "-")
        a = mod.parse_args(["--parts", "tls", "--tls-build", ""])
        self.assertEqual(mod.command(a.selected[0], a)[-1], "-")

    def test_tls_library_of_a_build(self):
        tool = os.path.join(ROOT, "bench", "lib", "tlsbuild.py")
        with tempfile.TemporaryDirectory() as d:
            self.assertEqual(run(tool, d).returncode, 1)  # not configured
            cache = os.path.join(d, "CMakeCache.txt")
            for line, lib in (("FOO:BOOL=ON\n", "boringssl"),
                              ("AMBIENT_TLS:STRING=boringssl\n", "boringssl"),
                              ("AMBIENT_TLS:UNINITIALIZED=openssl\n", "openssl")):
                with open(cache, "w") as f:
                    f.write(line)
                p = run(tool, d)
                self.assertEqual((p.returncode, p.stdout.strip()), (0, lib), line)

    def test_bench_env_selects_parts(self):
        env = dict(os.environ, BENCH="idle")
        p = run(RUNNER, "--dry-run", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 1)
        self.assertIn("idle_memory.sh", p.stdout)

    def test_unknown_part_and_bad_flags_are_refused(self):
        p = run(RUNNER, "--parts", "pair,nosuch", "--dry-run")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown part(s) nosuch", p.stderr)
        self.assertIn("floors, identity", p.stderr)
        for bad in (["--rounds", "0"], ["--seconds", "0"], ["--rounds", "x"]):
            self.assertEqual(run(RUNNER, "--dry-run", *bad).returncode, 2, bad)

    def test_figures_merge_into_rounds(self):
        mod = load_runner()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "f.jsonl")
            env = dict(os.environ, BENCH_FIGURES=path)
            fig = os.path.join(ROOT, "bench", "lib", "figure.py")
            for v in ("3", "1", "2"):
                p = run(fig, "x.rate", "1/s", v, "--peer", "y.rate", "--better", "higher",
                        env=env)
                self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(run(fig, "x.rate", "1/s", "nan?", env=env).returncode, 2)
            with open(path) as f:
                lines = [json.loads(line) for line in f]
        merged = mod.merge(lines)
        self.assertEqual(len(merged), 1)
        f = merged[0]
        self.assertEqual(f["values"], [3.0, 1.0, 2.0])
        self.assertEqual((f["min"], f["median"], f["max"], f["rounds"]), (1.0, 2.0, 3.0, 3))
        self.assertEqual(f["peer"], "y.rate")


    def test_run_part_collects_figures_and_status(self):
        mod = load_runner()
        code = ("import json, os\n"
                "f = open(os.environ['BENCH_FIGURES'], 'a')\n"
                "print('measuring round', os.environ['BENCH_ROUNDS'])\n"
                "f.write(json.dumps({'name': 'x', 'unit': 'ms', 'values': [2, 4]}) + '\\n')\n"
                "f.write('not json\\n')\n"
                "f.write(json.dumps({'name': 'y', 'unit': 'ms', 'values': ['NaN?']}) + '\\n')\n"
                "raise SystemExit(int(os.environ.get('FAKE_RC', '0')))\n")
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        script = os.path.join(tmp, "fake_part.py")
        with open(script, "w") as f:
            f.write(code)
        part = mod.Part("fake", "a fake part", ["{py}", script], 1)
        args = mod.parse_args(["--rounds", "2"])
        res = mod.run_part(part, 1, 1, args, 0)
        self.assertEqual(res["status"], "ok")
        self.assertEqual([f["name"] for f in res["figures"]], ["x"])
        self.assertEqual(res["figures"][0]["median"], 3)
        os.environ["FAKE_RC"] = "3"
        try:
            res = mod.run_part(part, 1, 1, args, 0)
        finally:
            del os.environ["FAKE_RC"]
        self.assertEqual(res["status"], "failed (exit 3)")


    def test_baseline_runs_alternate_and_are_named_apart(self):
        mod = load_runner()
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        # Each "build" holds the figure its programs would measure, so the
        # test sees which build each round ran on, and in which order.
        log = os.path.join(tmp, "order.log")
        for build, value in (("this", 10), ("base", 20)):
            os.makedirs(os.path.join(tmp, build))
            with open(os.path.join(tmp, build, "CMakeCache.txt"), "w") as f:
                f.write(f"CMAKE_BUILD_TYPE:STRING=RelWithDebInfo\nvalue={value}\n")
        script = os.path.join(tmp, "fake_part.py")
        with open(script, "w") as f:
            f.write("import json, os, sys\n"
                    "build = sys.argv[1]\n"
                    "v = float(open(build + '/CMakeCache.txt').read().split('value=')[1])\n"
                    f"open({log!r}, 'a').write(os.path.basename(build) + ' ' + "
                    "os.environ['BENCH_ROUNDS'] + '\\n')\n"
                    "f = open(os.environ['BENCH_FIGURES'], 'a')\n"
                    "for n, p in (('x', 'y'), ('y', None)):\n"
                    "    f.write(json.dumps({'name': n, 'unit': 'us', 'values': [v],"
                    " 'better': 'lower', 'peer': p}) + '\\n')\n")
        part = mod.Part("fake", "a fake part", ["{py}", script, "{build}"], 1)
        args = mod.parse_args(["--rounds", "3", "--build", os.path.join(tmp, "this"),
                               "--baseline", os.path.join(tmp, "base")])
        res = mod.run_part(part, 1, 1, args, 0)
        self.assertEqual(res["status"], "ok")
        figs = {f["name"]: f for f in res["figures"]}
        self.assertEqual(figs["x"]["values"], [10, 10, 10])
        self.assertEqual(figs["baseline.x"]["values"], [20, 20, 20])
        self.assertEqual(figs["x"]["peer"], "y")
        self.assertEqual(figs["baseline.x"]["peer"], "baseline.y")
        self.assertEqual(read_text(log).split("\n")[:6],
                         ["base 1", "this 1", "this 1", "base 1", "base 1", "this 1"])
        # The renderer: this build is 0.5x the baseline in a "lower is
        # better" figure with ranges apart, so better; a worse pair says so.
        out = os.path.join(tmp, "compare-20260101T000000Z.json")
        figs["baseline.y"]["values"] = [5, 6, 7]
        figs["baseline.y"].update(min=5, median=6, max=7)
        with open(out, "w") as f:
            json.dump({"baseline": {"commit": "abc"}, "commit": "def", "machine": {},
                       "rounds": 3, "parts": [res]}, f)
        md = os.path.join(tmp, "BEFORE-AFTER.md")
        p = run(os.path.join(ROOT, "scripts", "bench_compare.py"), out, "--markdown", md)
        self.assertEqual(p.returncode, 0, p.stderr)
        text = read_text(md)
        row = [line for line in text.splitlines() if line.startswith("| `x`")][0]
        self.assertIn("0.500x", row)
        self.assertIn("better", row)
        row = [line for line in text.splitlines() if line.startswith("| `y`")][0]
        self.assertIn("**worse**", row)
        self.assertIn("Worse beyond the noise: y.", text)
        p = run(os.path.join(ROOT, "scripts", "bench_compare.py"), SAMPLE)
        self.assertEqual(p.returncode, 2)
        self.assertIn("not a before/after run", p.stderr)

    def test_baseline_must_be_a_build_directory(self):
        p = run(RUNNER, "--baseline", "/nonexistent-build", "--dry-run")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not a build directory", p.stderr)

    def test_compare_refuses_a_base_that_is_not_a_commit(self):
        # make bench-compare's driver stops before building anything.
        p = subprocess.run(["bash", os.path.join(ROOT, "scripts", "bench-compare.sh"),
                            "no-such-rev-xyz", "build"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=ROOT)
        self.assertEqual(p.returncode, 2)
        self.assertIn("no-such-rev-xyz is not a commit", p.stderr)


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def report(self, data, *extra):
        path = os.path.join(self.tmp, "20260101T000000Z.json")
        with open(path, "w") as f:
            json.dump(data, f)
        md = os.path.join(self.tmp, "RESULTS.md")
        p = run(REPORT, path, "--markdown", md, *extra)
        return p, (read_text(md) if os.path.exists(md) else "")

    def goal_row(self, md, text):
        rows = [line for line in md.splitlines() if text in line]
        self.assertEqual(len(rows), 1, text)
        return rows[0]

    def test_report_charts_goals_and_readme(self):
        data = load_json(SAMPLE)
        readme = os.path.join(self.tmp, "README.md")
        with open(readme, "w") as f:
            f.write("intro\n<!-- bench-headline:begin -->\nold\n<!-- bench-headline:end -->\nend\n")
        charts = os.path.join(self.tmp, "charts")
        p, md = self.report(data, "--charts", charts, "--readme", readme)
        self.assertEqual(p.returncode, 0, p.stderr)
        for name in ("throughput.png", "cpu_per_gb.png", "latency_cdf.png", "rates.png",
                     "rule_install.png", "idle_memory.png"):
            png = os.path.join(charts, name)
            self.assertTrue(os.path.exists(png), name)
            with open(png, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", name)
            self.assertGreater(os.path.getsize(png), 5000, name)
            self.assertIn(f"charts/{name})", md)
        self.assertIn("## Goals", md)
        self.assertIn("## What we learned", md)
        # Every goal of the sample is measured: each row ends with met or not met.
        goal_rows = md.split("## Goals")[1].split("##")[0].strip().splitlines()[2:]
        self.assertGreaterEqual(len(goal_rows), 14)
        for row in goal_rows:
            self.assertRegex(row, r"\| \*\*(met|not met)\*\* \|$")
        text = read_text(readme)
        self.assertTrue(text.startswith("intro\n") and text.endswith("end\n"))
        self.assertNotIn("\nold\n", text)
        self.assertIn("| HBONE pair throughput, one stream |", text)

    def test_goal_follows_the_figures(self):
        data = load_json(SAMPLE)
        floor = None
        for part in data["parts"]:
            for f in part["figures"]:
                if f["name"] == "relay_server.core_s_per_gb":
                    floor = f["median"]
        self.assertIsNotNone(floor)
        goal = "HBONE server side CPU per GB within 10 %"
        for factor, verdict in ((1.05, "**met**"), (1.5, "**not met**")):
            d = copy.deepcopy(data)
            for part in d["parts"]:
                for f in part["figures"]:
                    if f["name"] == "pair.server_cpu.ambient":
                        f["median"] = floor * factor
            p, md = self.report(d, "--no-charts")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(self.goal_row(md, goal).endswith(f"| {verdict} |"), factor)

    def test_missing_figure_is_not_measured_never_met(self):
        d = load_json(SAMPLE)
        d["parts"] = [p for p in d["parts"] if p["name"] != "pair"]
        p, md = self.report(d, "--no-charts")
        self.assertEqual(p.returncode, 0, p.stderr)
        row = self.goal_row(md, "added 64-byte ping-pong latency")
        self.assertIn("not measured", row)
        self.assertNotIn("**met**", row)

    def with_tls_figures(self, openssl_p50):
        """The sample plus the tls, floors and pair figures of two TLS libraries."""
        d = load_json(SAMPLE)

        def fig(name, unit, median, **extra):
            return dict(name=name, unit=unit, values=[median], min=median, max=median,
                        median=median, rounds=1, **extra)
        tls = []
        for lib, peer, scale in (("boringssl", None, 1.0), ("openssl", "boringssl", 1.9)):
            ref = {"peer": f"tls.core_handshake.{peer}"} if peer else {}
            tls += [fig(f"tls.core_handshake.{lib}", "us", 1100 * scale, **ref),
                    fig(f"tls.bare_handshake.{lib}", "us", 1000 * scale),
                    fig(f"tls.new_connection_p50.{lib}", "us",
                        openssl_p50 if peer else 1800)]
        d["parts"].append({"name": "tls", "what": "two libraries", "status": "ok",
                           "seconds": 1, "figures": tls})
        for part in d["parts"]:
            if part["name"] == "floors":
                part["figures"].append(fig("relay_client.core_s_per_gb.openssl", "core-s/GB",
                                           0.97))
            if part["name"] == "pair":
                part["figures"].append(fig("pair.gbps.ambient-openssl", "Gbit/s", 2.0))
        return d

    def test_same_run_tls_comparison(self):
        p, md = self.report(self.with_tls_figures(3200), "--no-charts")
        self.assertEqual(p.returncode, 0, p.stderr)
        section = md.split("## The two TLS libraries, same run")[1].split("\n## ")[0]
        self.assertIn("| what | BoringSSL | OpenSSL 3 | ratio |", section)
        self.assertIn("| floor: the library's bare mutual TLS 1.3 handshake, both ends, CPU | "
                      "1000 µs | 1900 µs | 1.90x |", section)
        self.assertIn("| ambient over the bare handshake (sans-IO connection / floor) | 1.10x | "
                      "1.10x | — |", section)
        self.assertRegex(section, r"\| pair throughput, one stream \(iperf3 over loopback\) \| "
                         r"[0-9.]+ Gbit/s \| 2.00 Gbit/s \|")
        self.assertRegex(section, r"its floor: loopback send\+recv \+ AES-128-GCM seal \| "
                         r"[0-9.]+ core-s/GB \| 0.97 core-s/GB")
        row = self.goal_row(md, "new connection p50 <= 0.5 ms with OpenSSL 3")
        self.assertIn("3200 µs; floor: the library's own mutual handshake, no ambient code, "
                      "costs 1900 µs of CPU (1.90x BoringSSL's)", row)
        self.assertTrue(row.endswith("| **not met** |"), row)
        p, md = self.report(self.with_tls_figures(450), "--no-charts")
        self.assertTrue(self.goal_row(md, "p50 <= 0.5 ms with OpenSSL 3").endswith("| **met** |"))
        # Without the tls part: no section, no goal row.
        p, md = self.report(load_json(SAMPLE), "--no-charts")
        self.assertNotIn("The two TLS libraries", md)
        self.assertNotIn("p50 <= 0.5 ms with OpenSSL 3", md)

    def test_bad_input_is_refused(self):
        bad = os.path.join(self.tmp, "bad.json")
        with open(bad, "w") as f:
            f.write("{not json")
        p = run(REPORT, bad, "--summary")
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot read", p.stderr)
        with open(bad, "w") as f:
            json.dump({"format": "something-else"}, f)
        p = run(REPORT, bad, "--summary")
        self.assertEqual(p.returncode, 1)
        self.assertIn("not an ambient-bench results file", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
