#!/usr/bin/env bash
# idle_memory.sh BUILD_DIR [N...]: user-space memory per idle tunnelled TCP
# connection. N connections (default 10000; several counts: one table row
# per count and pair, the pairs alternating) go through a client side
# (forwarder) and a server side, each carrying a 1-byte echo, then sit idle;
# the growth of VmRSS of each side divided by N is reported, for ambient
# (ambientctl hbone forward/serve) and the Go standard-library peer, in the
# same run. Loopback only; every process started is stopped. With
# $BENCH_FIGURES set (scripts/bench.py) each row is also handed over as figures.
set -euo pipefail
build=$(cd "${1:?usage: idle_memory.sh BUILD_DIR [N...]}" && pwd)
shift
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(10000)
# IDLE_COUNTS="200 500" overrides the counts (quick runs of `make bench`).
[ -n "${IDLE_COUNTS:-}" ] && read -r -a counts <<<"$IDLE_COUNTS"
fig="/usr/bin/python3 $(cd "$(dirname "$0")/../lib" && pwd)/figure.py"
ambientctl=$build/examples/ambientctl/ambientctl
peer=$build/tests/interop/hbonepeer
tool=$build/bench/hbone/hbone_benchtool
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true  # each process holds about N fds
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
"$tool" certs "$dir"
start() {
  local name=$1; shift
  "$@" >"$dir/$name.out" 2>"$dir/$name.err" &
  pid=$!; pids+=("$pid")
  for _ in $(seq 100); do
    addr=$(sed -n 's/^listening on //p' "$dir/$name.out" | head -1)
    [ -n "$addr" ] && return 0
    sleep 0.05
  done
  echo "$name did not start: $(cat "$dir/$name.err")" >&2; exit 1
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
tls_c=(--cert "$dir/client.pem" --key "$dir/client.key" --bundle "$dir/ca.pem")
tls_s=(--cert "$dir/server.pem" --key "$dir/server.key" --bundle "$dir/ca.pem")
start echo "$tool" echo-epoll 127.0.0.1:0
echo_addr=$addr
echo "# idle_memory: $(date -u +%FT%TZ), N=${counts[*]}, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| pair | N | client side KiB/conn | server side KiB/conn | client RSS before → after (MiB) | server RSS before → after (MiB) |"
echo "|---|---|---|---|---|---|"
for n in "${counts[@]}"; do
for kind in ambient go; do
  if [ "$kind" = ambient ]; then
    start srv "$ambientctl" hbone serve --listen 127.0.0.1:0 "${tls_s[@]}"; spid=$pid; via=$addr
    start fwd "$ambientctl" hbone forward --listen 127.0.0.1:0 --via "$via" --authority "$echo_addr" \
      "${tls_c[@]}"; cpid=$pid; fwd=$addr
  else
    start srv "$peer" server --listen 127.0.0.1:0 "${tls_s[@]}"; spid=$pid; via=$addr
    start fwd "$peer" forward --listen 127.0.0.1:0 --via "$via" --authority "$echo_addr" \
      "${tls_c[@]}"; cpid=$pid; fwd=$addr
  fi
  # Warm up: one tunnel, so one-time allocations are in the baseline.
  rm -f "$dir/hold.$kind" "$dir/hold2.$kind" "$dir/warm.out" "$dir/idle.out"
  mkfifo "$dir/hold.$kind"
  "$tool" idle "$fwd" 1 <"$dir/hold.$kind" >"$dir/warm.out" & wpid=$!; pids+=("$wpid")
  exec 7>"$dir/hold.$kind"
  for _ in $(seq 200); do grep -q ready "$dir/warm.out" 2>/dev/null && break; sleep 0.05; done
  sleep 0.5
  c0=$(rss_kb "$cpid"); s0=$(rss_kb "$spid")
  mkfifo "$dir/hold2.$kind"
  "$tool" idle "$fwd" "$n" <"$dir/hold2.$kind" >"$dir/idle.out" & ipid=$!; pids+=("$ipid")
  exec 8>"$dir/hold2.$kind"
  for _ in $(seq 1200); do grep -q ready "$dir/idle.out" 2>/dev/null && break; sleep 0.05; done
  if ! grep -q ready "$dir/idle.out"; then
    echo "| $kind | $n | failed | | | |"
    exec 7>&- 8>&-
    kill "$cpid" "$spid" 2>/dev/null || true
    wait "$cpid" "$spid" 2>/dev/null || true
    continue
  fi
  sleep 1
  c1=$(rss_kb "$cpid"); s1=$(rss_kb "$spid")
  awk -v k="$kind" -v n="$n" -v c0="$c0" -v c1="$c1" -v s0="$s0" -v s1="$s1" 'BEGIN {
    printf "| %s | %d | %.2f | %.2f | %.1f → %.1f | %.1f → %.1f |\n", k, n, (c1-c0)/n, (s1-s0)/n,
      c0/1024, c1/1024, s0/1024, s1/1024 }'
  for side in client server; do
    if [ $side = client ]; then d=$((c1 - c0)); else d=$((s1 - s0)); fi
    vs=()
    [ "$kind" = ambient ] && vs=(--peer "idle.${side}_kib.go.n$n")
    $fig "idle.${side}_kib.$kind.n$n" KiB "$(awk -v d="$d" -v n="$n" 'BEGIN {print d / n}')" \
      --better lower --x "$n" "${vs[@]}" \
      --label "$kind $side side, user-space memory per idle tunnelled connection, N=$n"
  done
  exec 7>&- 8>&-
  wait "$ipid" "$wpid" 2>/dev/null || true
  kill "$cpid" "$spid" 2>/dev/null || true
  wait "$cpid" "$spid" 2>/dev/null || true
done
done
