#!/usr/bin/env bash
# Node proxy end to end, measured: pod A -> pod B through the example node
# proxy (in-pod capture, HBONE mTLS between the pods' netns, the same proxy
# process serving both ends as on one node), against the same two pods
# talking directly (no rules, no proxy) in the same run.
#
#   bash bench/e2e/node_proxy_bench.sh BUILD_DIR [SECONDS]
#
# Prints, for both paths: iperf3 single-stream throughput (SECONDS, default
# 10), sequential new connections per second (connect, 64 B each way,
# close; 300 of them), 64-byte ping-pong round trips on one connection
# (2000 after 100 warm-up rounds), and for the mesh path the node proxy's CPU seconds
# (user+sys from /proc) per GB carried. Needs root, iperf3, python3, openssl.
# ROUNDS (third argument, default 1) repeats each measurement: all direct
# rounds first, then all mesh rounds (capture cannot be undone in between).
# With $BENCH_FIGURES set (scripts/bench.py) the numbers are also figures.
set -euo pipefail
build=$(cd "${1:?usage: node_proxy_bench.sh BUILD_DIR [SECONDS] [ROUNDS]}" && pwd)
secs=${2:-10}
rounds=${3:-1}
fig="/usr/bin/python3 $(cd "$(dirname "$0")/../lib" && pwd)/figure.py"
src=$(cd "$(dirname "$0")/../.." && pwd)
agent_bin=$build/examples/node/node-agent
proxy_bin=$build/examples/node/node-proxy
[ "$(id -u)" -eq 0 ] || { echo "needs root" >&2; exit 1; }

source "$(dirname "$0")/topology.sh"
bench_topology ambient-bench

cat > "$tmp/node.json" <<JSON
{"trust_bundle": "ca.pem", "workloads": [
  {"uid": "a", "name": "client", "namespace": "bench", "service_account": "client",
   "addresses": ["198.18.1.2"], "netns": "$pod_a", "cert": "client.pem", "key": "client.key"},
  {"uid": "b", "name": "server", "namespace": "bench", "service_account": "server",
   "addresses": ["198.18.2.2"], "netns": "$pod_b", "cert": "server.pem", "key": "server.key"}]}
JSON

# Servers in pod B: iperf3, and a 64-byte echo for the connection rate.
ip netns exec "$pod_b" iperf3 -s -B 198.18.2.2 -p 5201 >/dev/null 2>&1 &
pids+=($!)
cat > "$tmp/echo.py" <<'PY'
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.2.2", 7000)); s.listen(128)
while True:
    c, _ = s.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:  # echo 64-byte messages until the client closes
        data = b""
        while len(data) < 64:
            chunk = c.recv(64 - len(data))
            if not chunk: break
            data += chunk
        if len(data) < 64: break
        c.sendall(data)
    c.close()
PY
cat > "$tmp/pingpong.py" <<'PY'
import socket, sys, time
n = int(sys.argv[1]); msg = b"p" * 64; lat = []
c = socket.create_connection(("198.18.2.2", 7000))
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for i in range(n + 100):
    t = time.perf_counter()
    c.sendall(msg); got = b""
    while len(got) < 64:
        got += c.recv(64 - len(got))
    if i >= 100: lat.append(time.perf_counter() - t)  # after 100 warm-up rounds
c.close()
lat.sort()
print("p50 %.1f us p99 %.1f us" % (lat[n // 2] * 1e6, lat[int(n * 0.99)] * 1e6))
PY
cat > "$tmp/rate.py" <<'PY'
import socket, sys, time
n = int(sys.argv[1]); msg = b"x" * 64; lat = []
start = time.perf_counter()
for _ in range(n):
    t = time.perf_counter()
    c = socket.create_connection(("198.18.2.2", 7000))
    c.sendall(msg); got = b""
    while len(got) < 64:
        chunk = c.recv(64)
        if not chunk: break
        got += chunk
    c.close(); lat.append(time.perf_counter() - t)
    assert got == msg, got
total = time.perf_counter() - start
lat.sort()
print("%.0f conn/s p50 %.2f ms p99 %.2f ms" % (n / total, lat[n // 2] * 1e3, lat[int(n * 0.99)] * 1e3))
PY
ip netns exec "$pod_b" python3 "$tmp/echo.py" &
pids+=($!)
sleep 0.5

iperf() {
  ip netns exec "$pod_a" iperf3 -c 198.18.2.2 -p 5201 -t "$secs" -J > "$tmp/iperf.json"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); e=d["end"]["sum_received"]; print("%.2f Gbit/s (%d bytes)" % (e["bits_per_second"]/1e9, e["bytes"]))' "$tmp/iperf.json"
}
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# measure PATH: one round of the three measurements, printed and handed over.
measure() {
  local path=$1 tp rate rtt peer=()
  [ "$path" = mesh ] && cpu0=$(cpu_of "$proxy_pid")
  tp=$(iperf)
  [ "$path" = mesh ] && cpu1=$(cpu_of "$proxy_pid")
  rate=$(ip netns exec "$pod_a" python3 "$tmp/rate.py" 300)
  rtt=$(ip netns exec "$pod_a" python3 "$tmp/pingpong.py" 2000)
  echo "iperf3 1 stream: $tp"
  echo "new connections: $rate"
  echo "64 B ping-pong on one connection: $rtt"
  [ "$path" = mesh ] && peer=(--peer e2e.gbps.direct)
  $fig "e2e.gbps.$path" Gbit/s "${tp%% *}" --better higher "${peer[@]}" \
    --label "pod A -> pod B, iperf3 one stream, $path"
  [ "$path" = mesh ] && peer=(--peer e2e.conns_per_s.direct)
  $fig "e2e.conns_per_s.$path" 1/s "${rate%% *}" --better higher "${peer[@]}" \
    --label "pod A -> pod B, sequential new connections, $path"
  [ "$path" = mesh ] && peer=(--peer e2e.pingpong_p50.direct)
  $fig "e2e.pingpong_p50.$path" us "$(echo "$rtt" | awk '{print $2}')" --better lower "${peer[@]}" \
    --label "pod A -> pod B, 64 B ping-pong p50, $path"
}

echo "== direct (no rules, no proxy): pod A -> pod B through the node netns router"
for _ in $(seq "$rounds"); do measure direct; done

ip netns exec "$node" "$agent_bin" --config "$tmp/node.json" --zds-socket "$tmp/zds.sock" >"$tmp/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$tmp/zds.sock" ] && break; sleep 0.1; done
ip netns exec "$node" "$proxy_bin" --config "$tmp/node.json" --zds-socket "$tmp/zds.sock" >"$tmp/proxy.log" 2>&1 &
proxy_pid=$!
pids+=($proxy_pid)
captured() { grep -c "captured in netns" "$tmp/proxy.log" || true; }
for _ in $(seq 100); do [ "$(captured)" -ge 2 ] && break; sleep 0.1; done
[ "$(captured)" -ge 2 ] || { cat "$tmp/proxy.log"; exit 1; }

echo "== mesh: captured in pod A, HBONE (TLS 1.3 + h2 CONNECT) to pod B's 15008, one node proxy"
hz=$(getconf CLK_TCK)
for _ in $(seq "$rounds"); do
  measure mesh  # sets cpu0, cpu1 around the iperf3 run
  bytes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["end"]["sum_received"]["bytes"])' "$tmp/iperf.json")
  cpu_gb=$(python3 -c "import sys; c=(int(sys.argv[2])-int(sys.argv[1]))/int(sys.argv[3]); b=int(sys.argv[4]); print('%.3f' % (c/(b/1e9)))" "$cpu0" "$cpu1" "$hz" "$bytes")
  echo "node proxy CPU during iperf3: $cpu_gb core-s/GB carried by iperf3 (both ends of the tunnel)"
  $fig e2e.proxy_cpu.mesh core-s/GB "$cpu_gb" --better lower \
    --label "node proxy CPU per GB (both tunnel ends, one process)"
done
n=$(grep -c "access.*connection complete" "$tmp/proxy.log" || true)
echo "access log lines: $n (every mesh connection logged on both ends)"
