#!/usr/bin/env bash
# Services, measured: pod A -> a service VIP (the node proxy picks the
# endpoint, pod B, and tunnels to its 15008) against pod A -> pod B's own IP
# through the same node proxy, in the same run, plus pod A -> pod B with no
# proxy at all for reference.
#
#   bash bench/e2e/services_bench.sh BUILD_DIR [CONNECTIONS]
#
# Prints, per path: sequential new connections per second (connect, 64 B each
# way, close; CONNECTIONS of them, default 300) with p50/p99 connection time,
# and 64-byte ping-pong round trips on one connection (2000 after 100
# warm-up rounds). The VIP -> waypoint -> endpoint path is not measured yet:
# there is no example waypoint program to put in the middle. Needs root,
# python3, openssl. `make bench BENCH=services` runs it; with $BENCH_FIGURES
# set (scripts/bench.py) the numbers are also figures, each compared with
# the mesh pod-IP path.
set -euo pipefail
build=$(cd "${1:?usage: services_bench.sh BUILD_DIR [CONNECTIONS]}" && pwd)
conns=${2:-300}
fig="/usr/bin/python3 $(cd "$(dirname "$0")/../lib" && pwd)/figure.py"
agent_bin=$build/examples/node/node-agent
proxy_bin=$build/examples/node/node-proxy
[ "$(id -u)" -eq 0 ] || { echo "needs root" >&2; exit 1; }
for b in "$agent_bin" "$proxy_bin"; do
  [ -x "$b" ] || { echo "$b is not built" >&2; exit 1; }
done

source "$(dirname "$0")/topology.sh"
bench_topology ambient-svcbench

cat > "$tmp/node.json" <<JSON
{"trust_bundle": "ca.pem", "local_config": "mesh.yaml", "workloads": [
  {"uid": "a", "netns": "$pod_a", "cert": "client.pem", "key": "client.key"},
  {"uid": "b", "netns": "$pod_b", "cert": "server.pem", "key": "server.key"}]}
JSON
cat > "$tmp/mesh.yaml" <<'YAML'
services:
- {name: echo, namespace: bench, hostname: echo.bench.svc.cluster.local,
   vips: ["/198.19.0.10"], ports: {80: 7000}}
workloads:
- {uid: a, name: client, namespace: bench, serviceAccount: client,
   workloadIps: ["198.18.1.2"], protocol: HBONE}
- {uid: b, name: server, namespace: bench, serviceAccount: server,
   workloadIps: ["198.18.2.2"], protocol: HBONE,
   services: {"bench/echo.bench.svc.cluster.local": {}}}
YAML

# A 64-byte echo in pod B, and the two clients (HOST PORT N).
cat > "$tmp/echo.py" <<'PY'
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.2.2", 7000)); s.listen(128)
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        data = b""
        while len(data) < 64:
            chunk = c.recv(64 - len(data))
            if not chunk: break
            data += chunk
        if len(data) < 64: break
        c.sendall(data)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
cat > "$tmp/rate.py" <<'PY'
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]); msg = b"x" * 64; lat = []
start = time.perf_counter()
for _ in range(n):
    t = time.perf_counter()
    c = socket.create_connection((host, port))
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
cat > "$tmp/pingpong.py" <<'PY'
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]); msg = b"p" * 64; lat = []
c = socket.create_connection((host, port))
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for i in range(n + 100):
    t = time.perf_counter()
    c.sendall(msg); got = b""
    while len(got) < 64:
        got += c.recv(64 - len(got))
    if i >= 100: lat.append(time.perf_counter() - t)
c.close()
lat.sort()
print("p50 %.0f us p99 %.0f us" % (lat[n // 2] * 1e6, lat[int(n * 0.99)] * 1e6))
PY
ip netns exec "$pod_b" python3 "$tmp/echo.py" &
pids+=($!)
sleep 0.5

measure() {  # NAME LABEL HOST PORT
  local rate rtt peer=()
  rate=$(ip netns exec "$pod_a" python3 "$tmp/rate.py" "$3" "$4" "$conns")
  rtt=$(ip netns exec "$pod_a" python3 "$tmp/pingpong.py" "$3" "$4" 2000)
  echo "== $2"
  echo "new connections ($conns): $rate"
  echo "64 B ping-pong on one connection: $rtt"
  [ "$1" = vip ] && peer=(--peer services.conns_per_s.pod_ip)
  $fig "services.conns_per_s.$1" 1/s "${rate%% *}" --better higher "${peer[@]}" \
    --label "pod A -> echo, sequential new connections, $1"
  [ "$1" = vip ] && peer=(--peer services.pingpong_p50.pod_ip)
  $fig "services.pingpong_p50.$1" us "$(echo "$rtt" | awk '{print $2}')" --better lower \
    "${peer[@]}" --label "pod A -> echo, 64 B ping-pong p50, $1"
}

measure direct "no proxy: pod A -> 198.18.2.2:7000 directly" 198.18.2.2 7000

ip netns exec "$node" "$agent_bin" --config "$tmp/node.json" --zds-socket "$tmp/zds.sock" >"$tmp/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$tmp/zds.sock" ] && break; sleep 0.1; done
ip netns exec "$node" "$proxy_bin" --config "$tmp/node.json" --zds-socket "$tmp/zds.sock" >"$tmp/proxy.log" 2>&1 &
pids+=($!)
captured() { grep -c "captured in netns" "$tmp/proxy.log" || true; }
for _ in $(seq 100); do [ "$(captured)" -ge 2 ] && break; sleep 0.1; done
[ "$(captured)" -ge 2 ] || { cat "$tmp/proxy.log"; exit 1; }

measure pod_ip "mesh, pod IP: pod A -> 198.18.2.2:7000 (HBONE to pod B's 15008)" 198.18.2.2 7000
measure vip "mesh, service VIP: pod A -> 198.19.0.10:80 (endpoint picked, HBONE to pod B's 15008, :authority 198.18.2.2:7000)" 198.19.0.10 80
vip_lines=$(grep -c 'dst.service="echo.bench.svc.cluster.local".*direction="outbound"' "$tmp/proxy.log" || true)
echo "(outbound access lines naming the service: $vip_lines)"
