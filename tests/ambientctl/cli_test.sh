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
expect version-extra 2 "$ctl" version extra
expect version-help 0 "$ctl" version --help
# Every group listed in --help answers --help itself.
for g in $("$ctl" --help | awk '/^commands:/{on=1; next} on && /^  [a-z]/ {print $1}'); do
  expect "$g --help" 0 "$ctl" "$g" --help
done
rm -f /tmp/ambientctl-cli.$$.out /tmp/ambientctl-cli.$$.err
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
