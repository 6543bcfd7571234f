#!/bin/bash
# scripts/reap-test-netns.sh, which `make test` runs before ctest: it deletes
# a test namespace whose process is gone (the test was killed before it could
# clean up) and keeps one whose process is alive (a test running now), and
# anything not named ambient-test-<pid>-*. Needs root; cleans up on any exit.
set -u
REAP=$1
if [ "$(id -u)" != 0 ]; then
  if [ "${AMBIENT_REQUIRE_PRIVILEGED:-0}" = 1 ]; then echo "FAIL: needs root"; exit 1; fi
  echo "*** NOT RUN: privileged test needs root ***"; exit 0
fi
# A pid with no process: one that has just exited (and, should it be reused
# at once, the next one).
dead=
while [ -z "$dead" ]; do
  sleep 0 &
  p=$!
  wait "$p"
  [ -d "/proc/$p" ] || dead=$p
done
DEAD=ambient-test-$dead-reap-killed
LIVE=ambient-test-$$-reap-running
OTHER=ambient-reap-$$-not-a-test
cleanup() { for ns in "$DEAD" "$LIVE" "$OTHER"; do ip netns del "$ns" 2>/dev/null; done; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
for ns in "$DEAD" "$LIVE" "$OTHER"; do ip netns add "$ns" || fail "ip netns add $ns"; done

out=$(bash "$REAP") || fail "reaper exited $?: $out"
echo "$out"
[ -e "/run/netns/$DEAD" ] && fail "$DEAD (pid $dead is gone) was kept"
[ -e "/run/netns/$LIVE" ] || fail "$LIVE (this test's pid, alive) was removed"
[ -e "/run/netns/$OTHER" ] || fail "$OTHER (not a test's name) was removed"
grep -qx "reap-test-netns: removed $DEAD (its test, pid $dead, is gone)" <<<"$out" ||
  fail "no line for $DEAD"
echo "ok: the killed test's namespace removed, the running test's and the other kept"
