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
  expect 2 "--config is required" -- "$bin"
  expect 2 "--config needs a value" -- "$bin" --config
  expect 1 "cannot read $tmp/missing.json" -- "$bin" --config "$tmp/missing.json"
  expect 1 "/dev/zero is larger than 16777216 bytes" -- "$bin" --config /dev/zero
  expect 1 "workloads\[0\]" -- "$bin" --config "$tmp/bad.json"
  expect 1 "not valid JSON" -- "$bin" --config "$tmp/garbage.json"
done
expect 2 "--backend must be iptables or nftables" -- "$1" --config x --backend ipfw
expect 2 "--dns-capture must be on or off" -- "$1" --config x --dns-capture maybe
exit $fail
