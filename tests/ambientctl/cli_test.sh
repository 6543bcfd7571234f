#!/usr/bin/env bash
# The contract every ambientctl command keeps: --help on stdout with exit 0,
# usage errors on stderr with exit 2, version output naming both versions.
set -u
ctl=$1
passed=0 failed=0
expect() { # expect NAME WANT_STATUS CMD...
  local name=$1 want=$2; shift 2
  "$@" >/tmp/ambientctl-cli.$$.out 2>/tmp/ambientctl-cli.$$.err
  local got=$?
  if [ "$got" -eq "$want" ]; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL $name: exit $got, want $want"; cat /tmp/ambientctl-cli.$$.err; fi
}
expect no-args 2 "$ctl"
expect help 0 "$ctl" --help
grep -q '^usage: ambientctl' /tmp/ambientctl-cli.$$.out || { failed=$((failed + 1)); echo "FAIL help text"; }
expect unknown 2 "$ctl" frobnicate
grep -q "unknown command 'frobnicate'" /tmp/ambientctl-cli.$$.err || { failed=$((failed + 1)); echo "FAIL unknown msg"; }
expect version 0 "$ctl" version
grep -qx "libambient [0-9]*\.[0-9]*\.[0-9]*" /tmp/ambientctl-cli.$$.out || { failed=$((failed + 1)); echo "FAIL version text"; }
grep -qx "tls \(boringssl\|openssl\)" /tmp/ambientctl-cli.$$.out || { failed=$((failed + 1)); echo "FAIL version tls line"; }
expect version-extra 2 "$ctl" version extra
expect version-help 0 "$ctl" version --help
expect dash-dash-version 0 "$ctl" --version
grep -qx "libambient [0-9]*\.[0-9]*\.[0-9]*" /tmp/ambientctl-cli.$$.out || { failed=$((failed + 1)); echo "FAIL --version text"; }
# --flag=value means --flag value, in every command.
if "$ctl" --help | grep -q '^  rules'; then
  a=$("$ctl" rules render --backend nftables --dns-capture off 2>&1)
  b=$("$ctl" rules render --backend=nftables --dns-capture=off 2>&1)
  if [ -n "$a" ] && [ "$a" = "$b" ]; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL rules render --flag=value differs from --flag value: $b"; fi
fi
if "$ctl" --help | grep -q '^  hbone'; then
  expect hbone-eq 2 "$ctl" hbone connect --via=localhost:15008 --authority=127.0.0.1:80 \
    --cert=/c --key=/k --bundle=/b
  grep -q "numeric IP:port is needed" /tmp/ambientctl-cli.$$.err || { failed=$((failed + 1)); echo "FAIL --via=value not read"; }
  # Each hbone subcommand has help of its own.
  for sub in serve connect forward; do
    expect "hbone $sub --help" 0 "$ctl" hbone "$sub" --help
    head -1 /tmp/ambientctl-cli.$$.out | grep -q "^usage: ambientctl hbone $sub " ||
      { failed=$((failed + 1)); echo "FAIL hbone $sub --help is not its own"; }
    n=$(grep -c '^usage:\|^       ambientctl' /tmp/ambientctl-cli.$$.out)
    [ "$n" -eq 1 ] || { failed=$((failed + 1)); echo "FAIL hbone $sub --help shows $n usages"; }
  done
fi
# Waiting for a ZDS agent that is not there is said at info level, without --verbose.
if "$ctl" --help | grep -q '^  zds'; then
  sock=/nonexistent-ambient-$$/ztunnel.sock
  timeout -s INT 2 "$ctl" zds proxy --socket "$sock" >/dev/null 2>/tmp/ambientctl-cli.$$.err
  if grep -q "info: waiting for the node agent on $sock" /tmp/ambientctl-cli.$$.err; then
    passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL zds proxy waits silently:";
    cat /tmp/ambientctl-cli.$$.err; fi
  n=$(grep -c 'waiting for the node agent' /tmp/ambientctl-cli.$$.err)
  [ "$n" -eq 1 ] || { failed=$((failed + 1)); echo "FAIL zds proxy said it waits $n times in 2 s, want once"; }
fi
# Every group listed in --help answers --help itself.
for g in $("$ctl" --help | awk '/^commands:/{on=1; next} on && /^  [a-z]/ {print $1}'); do
  expect "$g --help" 0 "$ctl" "$g" --help
done
rm -f /tmp/ambientctl-cli.$$.out /tmp/ambientctl-cli.$$.err
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
