#!/usr/bin/env bash
# loopback_floor.sh [SECONDS] [RUNS]: the kernel's share of a TLS relay hop on
# this machine. iperf3 straight over 127.0.0.1 (no relay), one stream; prints
# the CPU seconds per GB of the sender and of the receiver (from iperf3's own
# accounting). One side of a relay pays one receive and one send of every
# byte, so sender + receiver is the kernel floor of a relay side, before any
# crypto (see BM_AesGcmRecord in hbone_bench) or user-space work.
# With $BENCH_FIGURES set (scripts/bench.py) each run is also a figure.
set -euo pipefail
lib=$(cd "$(dirname "$0")/../lib" && pwd)
secs=${1:-3}
runs=${2:-3}
command -v iperf3 >/dev/null || { echo "iperf3 missing" >&2; exit 1; }
dir=$(mktemp -d)
spid=
cleanup() {
  [ -n "$spid" ] && kill "$spid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
echo "# loopback_floor: $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), ${secs}s x ${runs}"
echo
echo "| run | Gbit/s | sender core-s/GB | receiver core-s/GB | sum |"
echo "|---|---|---|---|---|"
for run in $(seq "$runs"); do
  iperf3 -s -B 127.0.0.1 -p "$port" -1 >"$dir/s.out" 2>&1 & spid=$!
  for _ in $(seq 100); do grep -q "Server listening" "$dir/s.out" && break; sleep 0.05; done
  iperf3 -c 127.0.0.1 -p "$port" -t "$secs" -J >"$dir/c.json"
  wait "$spid" 2>/dev/null || true
  spid=
  BENCH_LIB=$lib /usr/bin/python3 - "$dir/c.json" "$run" <<'PY'
import json, os, sys
sys.path.insert(0, os.environ["BENCH_LIB"])
import figure
end = json.load(open(sys.argv[1]))["end"]
rx = end["sum_received"]
gb = rx["bytes"] / 1e9
cpu = end["cpu_utilization_percent"]
s = cpu["host_total"] / 100 * rx["seconds"] / gb
r = cpu["remote_total"] / 100 * rx["seconds"] / gb
print(f"| {sys.argv[2]} | {rx['bits_per_second'] / 1e9:.2f} | {s:.3f} | {r:.3f} | {s + r:.3f} |")
figure.emit("loopback.gbps", "Gbit/s", [rx["bits_per_second"] / 1e9], better="higher",
            label="loopback TCP, iperf3 one stream, no relay")
figure.emit("loopback.send_recv.core_s_per_gb", "core-s/GB", [s + r], better="lower",
            label="loopback TCP send + receive CPU per GB (iperf3 sender + receiver)")
PY
done
