#!/usr/bin/env bash
# The DNS proxy through the example binaries, as a user runs them: the node
# agent (DNS capture on, its default) and the node proxy (--dns on, its
# default) with a pod, and dnsmasq in the node netns as the upstream. An
# unmodified dig and getent in the pod check issue 14's list: the service name
# over UDP and TCP, its Kubernetes short forms, AAAA, NODATA, an unknown name
# forwarded to dnsmasq (which sees the pod's address), a truncated answer
# (mesh and forwarded) followed by dig's TCP retry, upstream down -> SERVFAIL,
# and the pod released while a TCP DNS connection is open (closed, 15053 gone).
# Usage: dns_e2e_test.sh BUILD_DIR. Needs root; without it the test is skipped
# loudly (exit 77), or fails under AMBIENT_REQUIRE_PRIVILEGED=1.
set -u
build=$(cd "$1" && pwd)
agent_bin=$build/examples/node/node-agent
proxy_bin=$build/examples/node/node-proxy
skip() {
  if [ "${AMBIENT_REQUIRE_PRIVILEGED:-0}" = 1 ]; then
    echo "dns e2e test: $1 and AMBIENT_REQUIRE_PRIVILEGED=1 is set" >&2
    exit 1
  fi
  echo "*** NOT RUN: dns e2e test: $1 ***"
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root"
for t in dig getent openssl /usr/sbin/dnsmasq /usr/bin/python3 iptables-restore; do
  command -v "$t" >/dev/null || skip "$t is missing (scripts/install-deps.sh installs it)"
done

id=$$
node=ambient-test-$id-dnse2e-node
pod=ambient-test-$id-dnse2e-a
tmp=$(mktemp -d /tmp/ambient-dnse2e.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for ns in "$pod" "$node"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
check() {  # check WHAT CONDITION...
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what" >&2; fail=1; fi
}
die() {
  echo "FAIL: $*" >&2
  for f in agent proxy dnsmasq; do echo "--- $f:"; cat "$tmp/$f.log" 2>/dev/null; done
  exit 1
}

for ns in "$node" "$pod"; do
  ip netns add "$ns" || die "ip netns add $ns"
  ip -n "$ns" link set lo up
done
ip -n "$node" link add va type veth peer name eth0 netns "$pod"
ip -n "$node" addr add 198.18.1.1/24 dev va
ip -n "$node" link set va up
ip -n "$pod" addr add 198.18.1.2/24 dev eth0
# An IPv6 address too (no DAD wait): glibc asks for AAAA records only when
# the host has one (AI_ADDRCONFIG), so getent ahostsv6 needs it at once.
ip -n "$node" addr add 2001:db8:1::1/64 dev va nodad
ip -n "$pod" addr add 2001:db8:1::2/64 dev eth0 nodad
ip -n "$pod" link set eth0 up
ip -n "$pod" route add default via 198.18.1.1

openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$tmp/ca.key"
openssl req -x509 -new -key "$tmp/ca.key" -subj "/O=dns e2e CA" -days 1 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$tmp/ca.pem" 2>/dev/null || die "openssl CA"
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$tmp/client.key"
openssl req -new -key "$tmp/client.key" -subj "/O=dns e2e" -out "$tmp/client.csr" 2>/dev/null
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth,clientAuth" \
  "subjectAltName=URI:spiffe://cluster.local/ns/demo/sa/client" > "$tmp/client.ext"
openssl x509 -req -in "$tmp/client.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
  -days 1 -extfile "$tmp/client.ext" -out "$tmp/client.pem" 2>/dev/null || die "openssl SVID"

cat > "$tmp/node.json" <<EOF
{"trust_domain": "cluster.local", "trust_bundle": "ca.pem", "local_config": "mesh.yaml",
 "workloads": [{"uid": "client-uid", "netns": "$pod", "cert": "client.pem", "key": "client.key"}]}
EOF
# The mesh: a service with an IPv4 and an IPv6 VIP, and a headless service
# whose 60 IPv6 endpoints do not fit in dig's 1232-byte EDNS buffer.
{
  cat <<'YAML'
services:
- name: details
  namespace: demo
  hostname: details.demo.svc.cluster.local
  vips: ["/198.19.0.10", "/2001:db8:ffff::10"]
  ports: {80: 9080}
- name: db
  namespace: demo
  hostname: db.demo.svc.cluster.local
  vips: []  # headless
  ports: {5432: 5432}
workloads:
- uid: client-uid
  name: client
  namespace: demo
  serviceAccount: client
  workloadIps: ["198.18.1.2"]
  protocol: HBONE
YAML
  for i in $(seq 1 60); do
    printf -- '- uid: db-%d\n  name: db-%d\n  namespace: demo\n  workloadIps: ["2001:db8:5::%d"]\n  services: {"demo/db.demo.svc.cluster.local": {}}\n' \
      "$i" "$i" "$i"
  done
} > "$tmp/mesh.yaml"

# The upstream: dnsmasq in the node netns, knowing outside.test and eight
# 200-byte TXT records of big.test (more than 512 bytes).
txt=$(head -c 200 /dev/zero | tr '\0' 'x')
txt_args=()
for i in 1 2 3 4 5 6 7 8; do txt_args+=("--txt-record=big.test,$i$txt"); done
ip netns exec "$node" /usr/sbin/dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv \
  --no-hosts --pid-file= --bind-interfaces --listen-address=198.18.1.1 --port=53 \
  --host-record=outside.test,198.18.1.1 "${txt_args[@]}" --log-queries \
  --log-facility="$tmp/dnsmasq.log" 2>"$tmp/dnsmasq.err" &
dnsmasq_pid=$!
pids+=($dnsmasq_pid)

ip netns exec "$node" "$agent_bin" --config "$tmp/node.json" --zds-socket "$tmp/zds.sock" \
  >"$tmp/agent.log" 2>&1 &
agent_pid=$!
pids+=($agent_pid)
for _ in $(seq 100); do grep -q "client-uid: " "$tmp/agent.log" && break; sleep 0.1; done
ip netns exec "$node" "$proxy_bin" --config "$tmp/node.json" --zds-socket "$tmp/zds.sock" \
  --dns-upstream 198.18.1.1:53 --metrics 127.0.0.1:15020 >"$tmp/proxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "ZDS snapshot applied: 1 pod" "$tmp/proxy.log" && break; sleep 0.1; done
grep -q "ZDS snapshot applied: 1 pod" "$tmp/proxy.log" || die "the node proxy did not capture the pod"
check "the agent captured DNS by default" grep -q "DNS capture on" "$tmp/agent.log"

printf '%s\n' "search demo.svc.cluster.local svc.cluster.local cluster.local" \
  "nameserver 198.18.1.1" "options ndots:5" > "$tmp/resolv.conf"
in_pod() {  # in_pod CMD...: CMD in the pod, with the pod's resolv.conf (own mount namespace)
  ip netns exec "$pod" sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$tmp/resolv.conf" "$@"
}
q() { in_pod dig +time=3 +tries=1 "$@" 2>&1; }

out=$(q +short details.demo.svc.cluster.local)
check "A over UDP: $out" [ "$out" = "198.19.0.10" ]
out=$(q +tcp +short details.demo.svc.cluster.local)
check "A over TCP: $out" [ "$out" = "198.19.0.10" ]
for name in details details.demo details.demo.svc; do
  out=$(q +short "$name")
  check "short form $name: $out" [ "$out" = "198.19.0.10" ]
done
out=$(in_pod getent ahostsv4 details | head -1)
check "getent ahostsv4 details (glibc, through the search list): $out" \
  grep -Eq '^198\.19\.0\.10 +STREAM details\.demo\.svc\.cluster\.local$' <<<"$out"
out=$(in_pod getent ahostsv6 details | head -1)
check "getent ahostsv6 details: $out" grep -Eq '^2001:db8:ffff::10 +STREAM ' <<<"$out"
out=$(q +short AAAA details.demo.svc.cluster.local)
check "AAAA: $out" [ "$out" = "2001:db8:ffff::10" ]
out=$(q MX details.demo.svc.cluster.local)
check "MX of a mesh name is NOERROR..." grep -q "status: NOERROR" <<<"$out"
check "... with no answer (NODATA)" grep -q "ANSWER: 0," <<<"$out"
out=$(q details.demo.svc.cluster.local)
check "mesh answers are authoritative" grep -q "flags: qr aa" <<<"$out"
check "... with TTL 30" \
  grep -Eq '^details\.demo\.svc\.cluster\.local\.\s+30\s+IN\s+A\s+198\.19\.0\.10$' <<<"$out"

out=$(q +short outside.test)
check "an unknown name is forwarded to dnsmasq: $out" [ "$out" = "198.18.1.1" ]
check "dnsmasq got it from the pod's own address" \
  grep -q "query\[A\] outside.test from 198.18.1.2" "$tmp/dnsmasq.log"

out=$(q AAAA db.demo.svc.cluster.local)
check "a big mesh answer is truncated over UDP, then dig retries over TCP" \
  grep -q "Truncated, retrying in TCP mode" <<<"$out"
check "the TCP answer has all 60 endpoints ($(grep -c 'IN	AAAA	2001:db8:5::' <<<"$out"))" \
  [ "$(grep -c 'IN	AAAA	2001:db8:5::' <<<"$out")" -eq 60 ]
out=$(q +bufsize=512 TXT big.test)
check "a truncated upstream answer stays truncated, then dig retries over TCP" \
  grep -q "Truncated, retrying in TCP mode" <<<"$out"
check "the forwarded TCP answer has all 8 TXT records" [ "$(grep -c 'IN	TXT	' <<<"$out")" -eq 8 ]

# Upstream down: SERVFAIL, not silence.
kill -TERM "$dnsmasq_pid"
wait "$dnsmasq_pid" 2>/dev/null
out=$(q outside.test)
check "upstream down: SERVFAIL" grep -q "status: SERVFAIL" <<<"$out"
out=$(q +tcp outside.test)
check "upstream down over TCP: SERVFAIL" grep -q "status: SERVFAIL" <<<"$out"
metrics=$(printf 'GET /metrics HTTP/1.0\r\n\r\n' |
  ip netns exec "$node" /usr/bin/python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", 15020), timeout=3)
s.sendall(sys.stdin.buffer.read())
out = b""
while True:
    b = s.recv(65536)
    if not b: break
    out += b
sys.stdout.write(out.decode())')
check "istio_dns_upstream_failures_total counted the failure" \
  grep -Eq '^istio_dns_upstream_failures_total\{request_protocol="udp"\} [1-9]' <<<"$metrics"

# A TCP DNS connection open while the pod is released: the proxy closes it.
ip netns exec "$pod" /usr/bin/python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", 15053), timeout=15)
print("open", flush=True)
try:
    b = s.recv(1)
    print("closed by the proxy" if b == b"" else "data?", flush=True)
except socket.timeout:
    print("still open", flush=True)
except ConnectionResetError:
    print("closed by the proxy", flush=True)' >"$tmp/tcp.out" 2>&1 &
tcp_pid=$!
for _ in $(seq 50); do grep -q open "$tmp/tcp.out" && break; sleep 0.1; done
check "a TCP DNS connection is open" grep -q "^open" "$tmp/tcp.out"
python3 - "$tmp/node.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["workloads"] = []
json.dump(config, open(sys.argv[1], "w"))
PY
kill -HUP "$agent_pid"
wait "$tcp_pid"
check "releasing the pod closed the open TCP DNS connection ($(cat "$tmp/tcp.out" | tr '\n' ' '))" \
  grep -q "closed by the proxy" "$tmp/tcp.out"
check "the pod was released" grep -q "client-uid (demo/client) released" "$tmp/proxy.log"
check "15053 is gone from the pod" \
  [ -z "$(ip netns exec "$pod" ss -lnH '( sport = :15053 )')" ]

if [ "$fail" -ne 0 ]; then
  for f in agent proxy dnsmasq; do echo "--- $f:"; cat "$tmp/$f.log" 2>/dev/null; done
fi
exit $fail
