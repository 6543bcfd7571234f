#!/usr/bin/env bash
# node-proxy --metrics as a user runs it (no root, no node agent): the HTTP
# endpoint answers /metrics (Prometheus text) and /healthz/ready (503: no
# ZDS snapshot yet), refuses bad requests with the right status, survives
# garbage and half-open connections, and the proxy still exits 0 on SIGTERM.
# Bad --metrics values are usage errors (2); a taken address is a failure (1).
# Usage: node_proxy_metrics_test.sh NODE_PROXY
set -u
proxy=$1
# shellcheck source=tests/e2e/proxy_cli_lib.sh
source "$(dirname "$0")/proxy_cli_lib.sh"
cat > "$tmp/node.json" <<JSON
{"trust_domain": "cluster.local", "trust_bundle": "ca.pem",
 "workloads": [{"uid": "w", "name": "web", "namespace": "shop", "addresses": ["198.18.0.10"]}]}
JSON

out=$("$proxy" --config "$tmp/node.json" --metrics nowhere 2>&1)
check "--metrics nowhere exits 2 ($?): $out" [ $? -eq 2 ]
out=$("$proxy" --config "$tmp/node.json" --metrics 2>&1)
check "--metrics without a value exits 2: $out" grep -q -- "--metrics needs a value" <<<"$out"
check "--help mentions --metrics" grep -q -- "--metrics ADDR" <<<"$("$proxy" --help)"

"$proxy" --config "$tmp/node.json" --zds-socket "$tmp/none.sock" --metrics 127.0.0.1:0 \
  --dns-upstream 192.0.2.53:53 >"$tmp/proxy.log" 2>&1 &
pid=$!
wait_port metrics /metrics

request() {  # request BYTES -> the whole response on stdout
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf '%b' "$1" >&3
  timeout 5 cat <&3
  exec 3<&-
}
status() { request "$1" | head -1 | tr -d '\r'; }

r=$(request 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
check "GET /metrics is 200: $r" grep -q '^HTTP/1.1 200 OK' <<<"$r"
check "GET /metrics is Prometheus text" grep -q '^Content-Type: text/plain; version=0.0.4' <<<"$r"
check "GET /metrics has the DNS proxy's counters" \
  grep -q '^istio_dns_requests_total{request_protocol="udp"} 0' <<<"$r"
check "the DNS proxy's upstream is logged" \
  grep -q "DNS proxy: 15053 UDP+TCP in every captured pod, upstream(s) 192.0.2.53:53" "$tmp/proxy.log"
check "/stats/prometheus too" [ "$(status 'GET /stats/prometheus?x=1 HTTP/1.0\r\n\r\n')" = "HTTP/1.1 200 OK" ]
check "not ready without a ZDS snapshot" \
  [ "$(status 'GET /healthz/ready HTTP/1.1\r\nHost: x\r\n\r\n')" = "HTTP/1.1 503 Service Unavailable" ]
check "unknown path 404" [ "$(status 'GET /nope HTTP/1.1\r\n\r\n')" = "HTTP/1.1 404 Not Found" ]
check "POST 405" [ "$(status 'POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n')" = "HTTP/1.1 405 Method Not Allowed" ]
check "garbage 400" [ "$(status 'hello\r\n\r\n')" = "HTTP/1.1 400 Bad Request" ]
check "binary 400" [ "$(status '\x00\x01\x02 \xff\r\n\r\n')" = "HTTP/1.1 400 Bad Request" ]
big=$(head -c 9000 /dev/zero | tr '\0' 'a')
check "a 9000-byte head is 431" \
  [ "$(status "GET /metrics HTTP/1.1\\r\\nX: $big\\r\\n\\r\\n")" = "HTTP/1.1 431 Request Header Fields Too Large" ]
# Connections that send half a request, or nothing, and go away.
for _ in $(seq 20); do
  exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /met' >&3 && exec 3<&-
  exec 3<>"/dev/tcp/127.0.0.1/$port" && exec 3<&-
done
check "still serving after garbage" [ "$(status 'GET /metrics HTTP/1.0\r\n\r\n')" = "HTTP/1.1 200 OK" ]

out=$(timeout 10 "$proxy" --config "$tmp/node.json" --zds-socket "$tmp/none.sock" \
  --metrics "127.0.0.1:$port" 2>&1)
check "a taken --metrics address exits 1 with the reason ($?): $out" grep -q -- "--metrics 127.0.0.1:$port" <<<"$out"

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
check "node-proxy exits 0 on SIGTERM (got $rc)" [ "$rc" -eq 0 ]
[ $fail -eq 0 ] || cat "$tmp/proxy.log" >&2
exit $fail
