#!/usr/bin/env bash
# Services, measured: pod A -> a service VIP (the node proxy picks the
# endpoint, pod B, and tunnels to its 15008) against pod A -> pod B's own IP
# through the same node proxy, in the same run, plus pod A -> pod B with no
# proxy at all for reference, and pod A -> the VIP of a second service whose
# waypoint is examples/waypoint (in a waypoint pod of its own, 198.18.3.2):
# node proxy -> waypoint -> node proxy -> pod B, two HBONE hops.
#
#   bash bench/e2e/services_bench.sh BUILD_DIR [CONNECTIONS]
#
# Prints, per path: sequential new connections per second (connect, 64 B each
# way, close; CONNECTIONS of them, default 300) with p50/p99 connection time,
# and 64-byte ping-pong round trips on one connection (2000 after 100
# warm-up rounds), and what the waypoint adds over the VIP path. Needs root,
# python3, openssl. `make bench BENCH=services` runs it; with $BENCH_FIGURES
# set (scripts/bench.py) the numbers are also figures, each compared with
# the mesh pod-IP path.
set -euo pipefail
build=$(cd "${1:?usage: services_bench.sh BUILD_DIR [CONNECTIONS]}" && pwd)
conns=${2:-300}
fig="/usr/bin/python3 $(cd "$(dirname "$0")/../lib" && pwd)/figure.py"
agent_bin=$build/examples/node/node-agent
proxy_bin=$build/examples/node/node-proxy
waypoint_bin=$build/examples/waypoint/waypoint
[ "$(id -u)" -eq 0 ] || { echo "needs root" >&2; exit 1; }
for b in "$agent_bin" "$proxy_bin" "$waypoint_bin"; do
  [ -x "$b" ] || { echo "$b is not built" >&2; exit 1; }
done

source "$(dirname "$0")/topology.sh"
bench_topology ambient-svcbench

# The waypoint pod (not captured: no netns in node.json) and its SVID.
pod_w=${node%-node}-w
trap 'ip netns del "$pod_w" 2>/dev/null || true; bench_topology_cleanup' EXIT
ip netns add "$pod_w"
ip -n "$pod_w" link set lo up
ip -n "$node" link add vw type veth peer name eth0 netns "$pod_w"
ip -n "$node" addr add 198.18.3.1/24 dev vw
ip -n "$node" link set vw up
ip -n "$pod_w" addr add 198.18.3.2/24 dev eth0
ip -n "$pod_w" link set eth0 up
ip -n "$pod_w" route add default via 198.18.3.1
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
  openssl pkcs8 -topk8 -nocrypt -out "$tmp/waypoint.key"
openssl req -new -key "$tmp/waypoint.key" -subj "/O=bench" -out "$tmp/waypoint.csr" 2>/dev/null
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth,clientAuth" \
  "subjectAltName=URI:spiffe://cluster.local/ns/bench/sa/waypoint" > "$tmp/waypoint.ext"
openssl x509 -req -in "$tmp/waypoint.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
  -days 1 -extfile "$tmp/waypoint.ext" -out "$tmp/waypoint.pem" 2>/dev/null

cat > "$tmp/node.json" <<JSON
{"trust_bundle": "ca.pem", "local_config": "mesh.yaml", "workloads": [
  {"uid": "a", "netns": "$pod_a", "cert": "client.pem", "key": "client.key"},
  {"uid": "b", "netns": "$pod_b", "cert": "server.pem", "key": "server.key"},
  {"uid": "w", "cert": "waypoint.pem", "key": "waypoint.key"}]}
JSON
cat > "$tmp/mesh.yaml" <<'YAML'
services:
- {name: echo, namespace: bench, hostname: echo.bench.svc.cluster.local,
   vips: ["/198.19.0.10"], ports: {80: 7000}}
- {name: echo-wp, namespace: bench, hostname: echo-wp.bench.svc.cluster.local,
   vips: ["/198.19.0.11"], ports: {80: 7000},
   waypoint: {destination: "bench/waypoint.bench.svc.cluster.local", hboneMtlsPort: 15008}}
- {name: waypoint, namespace: bench, hostname: waypoint.bench.svc.cluster.local,
   vips: [], ports: {15008: 15008}}
workloads:
- {uid: a, name: client, namespace: bench, serviceAccount: client,
   workloadIps: ["198.18.1.2"], protocol: HBONE}
- {uid: b, name: server, namespace: bench, serviceAccount: server,
   workloadIps: ["198.18.2.2"], protocol: HBONE,
   services: {"bench/echo.bench.svc.cluster.local": {}, "bench/echo-wp.bench.svc.cluster.local": {}}}
- {uid: w, name: waypoint, namespace: bench, serviceAccount: waypoint,
   workloadIps: ["198.18.3.2"], protocol: HBONE,
   services: {"bench/waypoint.bench.svc.cluster.local": {}}}
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

declare -A p50_conn p50_rtt
measure() {  # NAME LABEL HOST PORT [PEER]
  local rate rtt peer=()
  rate=$(ip netns exec "$pod_a" python3 "$tmp/rate.py" "$3" "$4" "$conns")
  rtt=$(ip netns exec "$pod_a" python3 "$tmp/pingpong.py" "$3" "$4" 2000)
  echo "== $2"
  echo "new connections ($conns): $rate"
  echo "64 B ping-pong on one connection: $rtt"
  p50_conn[$1]=$(echo "$rate" | awk '{print $4}')
  p50_rtt[$1]=$(echo "$rtt" | awk '{print $2}')
  [ "$1" = vip ] && peer=(--peer services.conns_per_s.pod_ip)
  [ "$1" = vip_waypoint ] && peer=(--peer services.conns_per_s.vip)
  $fig "services.conns_per_s.$1" 1/s "${rate%% *}" --better higher "${peer[@]}" \
    --label "pod A -> echo, sequential new connections, $1"
  peer=()
  [ "$1" = vip ] && peer=(--peer services.pingpong_p50.pod_ip)
  [ "$1" = vip_waypoint ] && peer=(--peer services.pingpong_p50.vip)
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

ip netns exec "$pod_w" "$waypoint_bin" --config "$tmp/node.json" --workload w >"$tmp/waypoint.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "waypoint  started" "$tmp/waypoint.log" && break; sleep 0.1; done
grep -q "waypoint  started" "$tmp/waypoint.log" || { cat "$tmp/waypoint.log"; exit 1; }
measure vip_waypoint "mesh, service VIP with a waypoint: pod A -> 198.19.0.11:80 (HBONE to examples/waypoint, which picks pod B and tunnels to its 15008)" 198.19.0.11 80
wp_lines=$(grep -c 'dst.service="echo-wp.bench.svc.cluster.local".*direction="outbound"' "$tmp/waypoint.log" || true)
echo "(the waypoint's outbound access lines: $wp_lines)"
[ "$wp_lines" -gt 0 ] || { echo "the waypoint carried nothing" >&2; exit 1; }
echo "== what the waypoint adds (p50): new connection +$(awk -v a="${p50_conn[vip_waypoint]}" -v b="${p50_conn[vip]}" 'BEGIN{printf "%.2f", a-b}') ms over the VIP path, +$(awk -v a="${p50_conn[vip_waypoint]}" -v b="${p50_conn[direct]}" 'BEGIN{printf "%.2f", a-b}') ms over no proxy; 64 B round trip +$(awk -v a="${p50_rtt[vip_waypoint]}" -v b="${p50_rtt[vip]}" 'BEGIN{printf "%.0f", a-b}') us over the VIP path, +$(awk -v a="${p50_rtt[vip_waypoint]}" -v b="${p50_rtt[direct]}" 'BEGIN{printf "%.0f", a-b}') us over no proxy"
