#!/usr/bin/env bash
# /dev/zero (a file that never ends) as every file argument of the example
# programs (issue 17, finding 3): each refuses it at once, with exit 1 and a
# message naming the file, instead of reading until memory runs out.
# Usage: dev_zero_files_test.sh AMBIENTCTL NODE_AGENT NODE_PROXY
set -u
ctl=$1 agent=$2 proxy=$3
fail=0
# A memory cap makes an unbounded read fail fast instead of endangering the
# machine (not under ASan, whose shadow memory needs terabytes of address space).
if ! grep -q __asan_init "$ctl" 2>/dev/null; then ulimit -v 2000000; fi
expect() {  # expect PATTERN -- command...
  local pattern=$1
  shift 2
  local out rc
  out=$(timeout 20 "$@" 2>&1 </dev/null)
  rc=$?
  if [ "$rc" -ne 1 ] || ! grep -q -- "$pattern" <<<"$out"; then
    echo "FAIL: $* -> exit $rc (want 1 and \"$pattern\"), output: ${out:0:300}" >&2
    fail=1
  fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/empty.pem"
e=$tmp/empty.pem
big="/dev/zero is larger than"
for cmd in "serve --listen 127.0.0.1:0" "connect --via 127.0.0.1:9 --authority 127.0.0.1:9" \
           "forward --listen 127.0.0.1:0 --via 127.0.0.1:9 --authority 127.0.0.1:9"; do
  # shellcheck disable=SC2086
  expect "$big" -- "$ctl" hbone $cmd --cert /dev/zero --key "$e" --bundle "$e"
  # shellcheck disable=SC2086
  expect "$big" -- "$ctl" hbone $cmd --cert "$e" --key /dev/zero --bundle "$e"
  # shellcheck disable=SC2086
  expect "$big" -- "$ctl" hbone $cmd --cert "$e" --key "$e" --bundle /dev/zero
done
expect "/dev/zero" -- "$ctl" spiffe verify --bundle /dev/zero --chain "$e"
expect "/dev/zero" -- "$ctl" spiffe verify --bundle "$e" --chain /dev/zero
expect "$big" -- "$agent" --config /dev/zero
expect "$big" -- "$proxy" --config /dev/zero
exit $fail
