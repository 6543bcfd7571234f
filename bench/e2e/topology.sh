# Sourced by the e2e benchmarks: the two-pod topology they share.
#
#   source bench/e2e/topology.sh; bench_topology PREFIX
#
# Makes a node netns and pods A (198.18.1.2) and B (198.18.2.2) joined to it
# by veths, a throw-away CA and SVIDs spiffe://cluster.local/ns/bench/sa/client
# and .../sa/server ($tmp/{ca,client,server}.{pem,key}). Sets node, pod_a,
# pod_b, tmp and pids (append the PIDs of what the caller starts); an EXIT
# trap kills those and removes the namespaces and $tmp. Needs root and openssl.
bench_topology() {
  local prefix=$1 ns sa
  id=$$
  node=$prefix-$id-node
  pod_a=$prefix-$id-a
  pod_b=$prefix-$id-b
  tmp=$(mktemp -d "/tmp/$prefix.XXXXXX")
  pids=()
  trap bench_topology_cleanup EXIT

  for ns in "$node" "$pod_a" "$pod_b"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  ip -n "$node" link add va type veth peer name eth0 netns "$pod_a"
  ip -n "$node" link add vb type veth peer name eth0 netns "$pod_b"
  ip -n "$node" addr add 198.18.1.1/24 dev va
  ip -n "$node" addr add 198.18.2.1/24 dev vb
  ip -n "$node" link set va up
  ip -n "$node" link set vb up
  ip netns exec "$node" sysctl -q -w net.ipv4.ip_forward=1
  ip -n "$pod_a" addr add 198.18.1.2/24 dev eth0
  ip -n "$pod_a" link set eth0 up
  ip -n "$pod_a" route add default via 198.18.1.1
  ip -n "$pod_b" addr add 198.18.2.2/24 dev eth0
  ip -n "$pod_b" link set eth0 up
  ip -n "$pod_b" route add default via 198.18.2.1

  openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
    openssl pkcs8 -topk8 -nocrypt -out "$tmp/ca.key"
  openssl req -x509 -new -key "$tmp/ca.key" -subj "/O=bench CA" -days 1 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$tmp/ca.pem" 2>/dev/null
  for sa in client server; do
    openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
      openssl pkcs8 -topk8 -nocrypt -out "$tmp/$sa.key"
    openssl req -new -key "$tmp/$sa.key" -subj "/O=bench" -out "$tmp/$sa.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth,clientAuth" \
      "subjectAltName=URI:spiffe://cluster.local/ns/bench/sa/$sa" > "$tmp/$sa.ext"
    openssl x509 -req -in "$tmp/$sa.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
      -days 1 -extfile "$tmp/$sa.ext" -out "$tmp/$sa.pem" 2>/dev/null
  done
}

bench_topology_cleanup() {
  local p ns
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for ns in "$pod_a" "$pod_b" "$node"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$tmp"
}
