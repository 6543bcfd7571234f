#!/bin/bash
# ambientctl zds agent + proxy against each other, in real namespaces: the
# proxy opens the listener set inside the pod netns (and nowhere else), and
# closes it when the agent deletes the pod. Needs root; cleans up on any exit.
set -u
AMBIENTCTL=$1
if [ "$(id -u)" != 0 ]; then
  if [ "${AMBIENT_REQUIRE_PRIVILEGED:-0}" = 1 ]; then echo "FAIL: needs root"; exit 1; fi
  echo "*** NOT RUN: privileged test needs root ***"; exit 0
fi
NS=ambient-test-$$-zds-ctl
OTHER=ambient-test-$$-zds-oth
DIR=$(mktemp -d /tmp/ambient-zds-ctl.XXXXXX)
SOCK=$DIR/zds.sock
PROXY_PID=
cleanup() {
  [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  ip netns del "$OTHER" 2>/dev/null
  rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- proxy output:"; cat "$DIR/proxy.out"; echo "--- agent output:"; cat "$DIR/agent.out" 2>/dev/null; exit 1; }

ip netns add "$NS" || fail "ip netns add"
ip netns add "$OTHER" || fail "ip netns add"
ip -n "$NS" link set lo up
ip -n "$OTHER" link set lo up

# The agent holds the pod for 8 s before deleting it: long enough for the
# checks below even on a loaded 2-core machine. The proxy starts only once the
# agent has registered the pod, so the pod is part of the initial snapshot
# (a proxy connecting earlier would get it as a live add instead).
"$AMBIENTCTL" zds agent --socket "$SOCK" --pod "uid-1=$NS" --oneshot --hold-ms 8000 \
  >"$DIR/agent.out" 2>&1 &
AGENT_PID=$!
for _ in $(seq 100); do grep -q '^pod uid=uid-1 ' "$DIR/agent.out" && break; sleep 0.05; done
grep -q '^pod uid=uid-1 ' "$DIR/agent.out" || fail "agent did not register the pod"
"$AMBIENTCTL" zds proxy --socket "$SOCK" --max-events 2 >"$DIR/proxy.out" 2>"$DIR/proxy.err" &
PROXY_PID=$!

# snapshot-complete is written after the snapshot's adds.
for _ in $(seq 100); do grep -q '^snapshot-complete ' "$DIR/proxy.out" && break; sleep 0.05; done
grep -q "^add uid=uid-1 name=uid-1 namespace=default service_account=default netns=[0-9]*:[0-9]* listeners=7$" \
  "$DIR/proxy.out" || fail "no add line"
grep -q '^snapshot-complete pods=1$' "$DIR/proxy.out" || fail "no snapshot line"
for port in 15001 15006 15008 15053; do
  ip netns exec "$NS" ss -Htln "sport = :$port" | grep -q LISTEN || fail "no listener on $port in the pod"
  ip netns exec "$OTHER" ss -Htln "sport = :$port" | grep -q LISTEN && fail "listener on $port outside the pod"
done
# A connection is accepted and closed.
ip netns exec "$NS" bash -c 'exec 3<>/dev/tcp/127.0.0.1/15001' || fail "connect to 15001"
for _ in $(seq 40); do grep -q 'accepted-and-closed uid=uid-1 listener=outbound' "$DIR/proxy.out" && break; sleep 0.05; done
grep -q 'accepted-and-closed uid=uid-1 listener=outbound' "$DIR/proxy.out" || fail "no accept line"

wait "$AGENT_PID" || fail "agent exit status $?"
grep -q '^del uid=uid-1 acked$' "$DIR/agent.out" || fail "agent: no acked delete"
wait "$PROXY_PID"; rc=$?; PROXY_PID=
[ $rc = 0 ] || fail "proxy exit status $rc"
grep -q '^del uid=uid-1$' "$DIR/proxy.out" || fail "proxy: no del line"
ip netns exec "$NS" ss -Htln "sport = :15001" | grep -q LISTEN && fail "listener survived delete"

# Usage errors exit 2; failures exit 1.
"$AMBIENTCTL" zds proxy >/dev/null 2>&1; [ $? = 2 ] || fail "proxy without --socket"
"$AMBIENTCTL" zds agent --socket "$SOCK" --pod nonsense >/dev/null 2>&1; [ $? = 2 ] || fail "bad --pod"
"$AMBIENTCTL" zds agent --socket "$SOCK" --pod "u=ambient-missing-$$" >/dev/null 2>&1; [ $? = 1 ] || fail "missing netns"
echo PASS
