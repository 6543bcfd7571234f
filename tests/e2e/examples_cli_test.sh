#!/usr/bin/env bash
# The example node agent and node proxy as a user runs them: --help answers
# with exit 0, usage errors exit 2, failures exit 1 with the reason on
# stderr (no root needed: they fail before touching any namespace).
# Usage: examples_cli_test.sh NODE_AGENT NODE_PROXY
set -u
fail=0
expect() {  # expect RC PATTERN -- command...
  local want=$1 pattern=$2
  shift 3
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$want" ] || ! grep -q -- "$pattern" <<<"$out"; then
    echo "FAIL: $* -> exit $rc (want $want), output: $out" >&2
    fail=1
  fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo '{"trust_bundle": "ca.pem", "workloads": [{"uid": "a"}]}' > "$tmp/bad.json"
echo 'not json' > "$tmp/garbage.json"
for bin in "$1" "$2"; do
  name=$(basename "$bin")
  expect 0 "usage: $name" -- "$bin" --help
  expect 2 "unknown argument \"--bogus\"" -- "$bin" --bogus
  expect 2 "--config.* is required" -- "$bin"
  expect 2 "--config needs a value" -- "$bin" --config
  expect 1 "cannot read $tmp/missing.json" -- "$bin" --config "$tmp/missing.json"
  expect 1 "/dev/zero is larger than 16777216 bytes" -- "$bin" --config /dev/zero
  expect 1 "workloads\[0\]" -- "$bin" --config "$tmp/bad.json"
  expect 1 "not valid JSON" -- "$bin" --config "$tmp/garbage.json"
done
expect 2 "--backend must be iptables or nftables" -- "$1" --config x --backend ipfw
expect 2 "--dns-capture must be on or off" -- "$1" --config x --dns-capture maybe
expect 2 "--dns must be on or off" -- "$2" --config x --dns maybe
expect 2 "--dns-upstream: DNS upstream \"dns.example\" is not" -- "$2" --config x --dns-upstream dns.example
expect 2 "--dns-upstream needs --dns on" -- "$2" --config x --dns off --dns-upstream 192.0.2.1
# The control-plane flags (--xds-address): one source for the mesh, the node's name required.
expect 2 "--config (or --xds-address) is required" -- "$2"
expect 2 "--xds-address needs --node-name (or NODE_NAME)" -- env -u NODE_NAME "$2" --xds-address 127.0.0.1:15012
expect 2 "leave out --config and --policy" -- "$2" --xds-address 127.0.0.1:15012 --node-name n --config x
expect 2 "--ca-address, --xds-root-cert and --token-file need --xds-address" -- "$2" --config x --ca-address 127.0.0.1:1
expect 2 "--instance-ip needs an IP address" -- "$2" --instance-ip nope
expect 2 "--log-format must be text or json" -- "$2" --config x --log-format yaml
expect 2 "--secret-ttl (SECRET_TTL) \"forever\" is not a duration" -- "$2" --config x --secret-ttl forever
expect 2 "--secret-ttl (SECRET_TTL) \"1s\" is not a duration" -- env SECRET_TTL=1s "$2" --config x
expect 1 "bad control plane address \"no-port\"" -- "$2" --xds-address no-port --node-name n
expect 1 "cannot read control plane root certificate file $tmp/missing.pem" -- "$2" --xds-address 127.0.0.1:15012 --node-name n --xds-root-cert "$tmp/missing.pem"

# No silent waits or silent misconfiguration (a config with no pods: nothing is
# touched). The node proxy without an agent says what it waits for, at info
# level; the agent says whether DNS capture is on (the default).
echo '{"trust_bundle": "ca.pem", "workloads": []}' > "$tmp/empty.json"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/ca.key" \
  -out "$tmp/ca.pem" -subj /CN=test-ca -days 1 -addext subjectAltName=URI:spiffe://cluster.local \
  >/dev/null 2>&1 || { echo "FAIL: openssl cannot make a test CA" >&2; fail=1; }
out=$(timeout -s TERM 4 "$2" --config "$tmp/empty.json" --zds-socket "$tmp/no-agent.sock" 2>&1)
grep -q "info  zds  waiting for the node agent on $tmp/no-agent.sock" <<<"$out" ||
  { echo "FAIL: node-proxy without an agent waits silently: $out" >&2; fail=1; }
# LOG_FORMAT=json (ztunnel's): every line one JSON object.
out=$(LOG_FORMAT=json timeout -s TERM 3 "$2" --config "$tmp/empty.json" --zds-socket "$tmp/no-agent.sock" 2>&1)
/usr/bin/python3 -c '
import json, sys
lines = sys.stdin.read().splitlines()
assert lines, "no output"
for l in lines:
    r = json.loads(l)
    assert set(r) >= {"level", "time", "scope", "message"}, r
assert any(r["scope"] == "zds" and "waiting for the node agent" in r["message"] for r in map(json.loads, lines))
' <<<"$out" || { echo "FAIL: LOG_FORMAT=json did not give one JSON object per line: $out" >&2; fail=1; }
out=$(timeout -s TERM 3 "$1" --config "$tmp/empty.json" --zds-socket "$tmp/agent1.sock" 2>&1)
grep -q "DNS capture on: the pods' DNS (port 53) goes to the node proxy's :15053" <<<"$out" ||
  { echo "FAIL: node-agent does not capture DNS by default: $out" >&2; fail=1; }
out=$(timeout -s TERM 3 "$1" --config "$tmp/empty.json" --zds-socket "$tmp/agent2.sock" \
  --dns-capture off 2>&1)
grep -q "DNS capture off (--dns-capture off)" <<<"$out" ||
  { echo "FAIL: node-agent --dns-capture off does not say so: $out" >&2; fail=1; }
# The node proxy says when its DNS proxy is off.
out=$(timeout -s TERM 3 "$2" --config "$tmp/empty.json" --zds-socket "$tmp/no-agent.sock" \
  --dns off 2>&1)
grep -q "DNS proxy: off (--dns off)" <<<"$out" ||
  { echo "FAIL: node-proxy --dns off does not say so: $out" >&2; fail=1; }
exit $fail
