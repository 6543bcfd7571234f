#!/usr/bin/env bash
# pair_bench.sh BUILD_DIR [SECONDS] [ROUNDS] [TLS_BUILD]: side-by-side HBONE
# pair benchmark on loopback, in one run, three tunnel pairs (client side +
# server side):
#   ambient  ambientctl hbone forward -> ambientctl hbone serve
#   go       hbonepeer forward -> hbonepeer server (Go stdlib net/http h2 + crypto/tls)
#   stunnel  stunnel client -> stunnel server (TLS 1.3, no HTTP/2)
# All use TLS 1.3 mutual TLS with the same ECDSA P-256 certificates.
# Measures (a) single-stream iperf3 throughput through each pair, (b) CPU
# seconds per GB of each side (user+system of the process, from /proc), and
# (c) 64-byte ping-pong round-trip percentiles (and direct, without a pair),
# and (d) new tunnels on the pooled connection: TCP connect to the client
# side, 1-byte echo, close, CONNS times in a row (env, default 2000).
# TLS_BUILD, when it holds an ambientctl built with the other TLS library
# (`make bench`: build-openssl/), adds that pair as "ambient-<library>" (e.g.
# ambient-openssl), its CPU per GB compared with that library's floor.
# Every measurement runs ROUNDS times, the pairs alternating inside each
# round. With $BENCH_FIGURES set (scripts/bench.py, `make bench`) each number
# is also handed over as a figure (bench/lib/figure.py); PINGS (default
# 20000) sets the round trips per ping-pong.
# Everything listens on 127.0.0.1 only; every process started is stopped.
set -euo pipefail
fig="/usr/bin/python3 $(cd "$(dirname "$0")/../lib" && pwd)/figure.py"

build=$(cd "${1:?usage: pair_bench.sh BUILD_DIR [SECONDS] [ROUNDS] [TLS_BUILD]}" && pwd)
secs=${2:-5}
rounds=${3:-1}
tls_build=${4:-}
ambientctl=$build/examples/ambientctl/ambientctl
peer=$build/tests/interop/hbonepeer
tool=$build/bench/hbone/hbone_benchtool
for f in "$ambientctl" "$peer" "$tool"; do
  [ -x "$f" ] || { echo "missing $f (build all targets first)" >&2; exit 1; }
done
command -v iperf3 >/dev/null || { echo "iperf3 missing" >&2; exit 1; }
stunnel=$(command -v stunnel4 || command -v stunnel || true)

dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
"$tool" certs "$dir"
tck=$(getconf CLK_TCK)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start NAME CMD...: runs CMD in the background, waits for "listening on
# ADDR" on its stdout, sets $addr and $pid.
start() {
  local name=$1; shift
  "$@" >"$dir/$name.out" 2>"$dir/$name.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    # (the background shell may not have created the file yet)
    addr=$(sed -n 's/^listening on //p' "$dir/$name.out" 2>/dev/null | head -1 || true)
    [ -n "$addr" ] && return 0
    sleep 0.05
  done
  echo "$name did not start: $(cat "$dir/$name.err")" >&2
  exit 1
}

# wait_port PORT: waits until something listens there (without connecting:
# a probe connection would travel through a relay to the one-off iperf3).
wait_port() {
  for _ in $(seq 100); do
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ] && return 0
    sleep 0.05
  done
  echo "nothing listens on $1" >&2
  exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
minor_faults() { awk '{print $10}' "/proc/$1/stat"; }

tls_ambient=(--cert "$dir/client.pem" --key "$dir/client.key" --bundle "$dir/ca.pem")
tls_ambient_srv=(--cert "$dir/server.pem" --key "$dir/server.key" --bundle "$dir/ca.pem")
expect=spiffe://cluster.local/ns/bench/sa/server

# start_pair KIND TARGET: client side listening at $fwd, pids in $cpid $spid.
start_pair() {
  local kind=$1 target=$2
  case $kind in
    ambient|ambient-base|"$tls_kind")
      local ctl=$ambientctl
      [ "$kind" = ambient-base ] && ctl=$base_ambientctl
      [ "$kind" = "$tls_kind" ] && ctl=$tls_ambientctl
      start amb-srv "$ctl" hbone serve --listen 127.0.0.1:0 "${tls_ambient_srv[@]}"
      spid=$pid; local via=$addr
      start amb-fwd "$ctl" hbone forward --listen 127.0.0.1:0 --via "$via" \
        --authority "$target" --expect "$expect" "${tls_ambient[@]}"
      cpid=$pid; fwd=$addr ;;
    go)
      start go-srv "$peer" server --listen 127.0.0.1:0 "${tls_ambient_srv[@]}"
      spid=$pid; local via=$addr
      start go-fwd "$peer" forward --listen 127.0.0.1:0 --via "$via" --authority "$target" \
        --expect "$expect" "${tls_ambient[@]}"
      cpid=$pid; fwd=$addr ;;
    stunnel)
      local ps pc
      ps=$(free_port); pc=$(free_port)
      cat >"$dir/st-srv.conf" <<EOF
foreground = yes
pid =
debug = 3
[srv]
accept = 127.0.0.1:$ps
connect = $target
cert = $dir/server.pem
key = $dir/server.key
CAfile = $dir/ca.pem
verifyChain = yes
sslVersionMin = TLSv1.3
EOF
      cat >"$dir/st-cli.conf" <<EOF
foreground = yes
pid =
debug = 3
[cli]
client = yes
accept = 127.0.0.1:$pc
connect = 127.0.0.1:$ps
cert = $dir/client.pem
key = $dir/client.key
CAfile = $dir/ca.pem
verifyChain = yes
sslVersionMin = TLSv1.3
EOF
      "$stunnel" "$dir/st-srv.conf" >"$dir/st-srv.err" 2>&1 & spid=$!; pids+=("$spid")
      "$stunnel" "$dir/st-cli.conf" >"$dir/st-cli.err" 2>&1 & cpid=$!; pids+=("$cpid")
      wait_port "$ps"; wait_port "$pc"
      fwd=127.0.0.1:$pc ;;
  esac
}

stop_pair() {
  kill "$cpid" "$spid" 2>/dev/null || true
  wait "$cpid" "$spid" 2>/dev/null || true
}

kinds=(ambient go)
# BASE_BUILD=<another build dir> adds its ambientctl as "ambient-base" (an
# older commit measured in the same run, for before/after ratios).
base_ambientctl=
if [ -n "${BASE_BUILD:-}" ]; then
  base_ambientctl=$BASE_BUILD/examples/ambientctl/ambientctl
  [ -x "$base_ambientctl" ] || { echo "missing $base_ambientctl" >&2; exit 1; }
  kinds=(ambient ambient-base go)
fi
tls_kind=-none-
tls_ambientctl=
if [ -n "$tls_build" ] && [ -x "$tls_build/examples/ambientctl/ambientctl" ]; then
  lib=$(/usr/bin/python3 "$(dirname "${fig##* }")/tlsbuild.py" "$tls_build")
  if [ "$lib" != "$(/usr/bin/python3 "$(dirname "${fig##* }")/tlsbuild.py" "$build")" ]; then
    tls_kind=ambient-$lib
    tls_ambientctl=$tls_build/examples/ambientctl/ambientctl
    kinds=("${kinds[0]}" "$tls_kind" "${kinds[@]:1}")
  fi
fi
[ -n "$stunnel" ] && kinds+=(stunnel)

echo "# pair_bench: $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), ${secs}s x ${rounds} rounds"
echo
echo "| pair | round | Gbit/s | client-side core-s/GB | server-side core-s/GB | client/server minor page faults per GB |"
echo "|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
  for kind in "${kinds[@]}"; do
    ip=$(free_port)
    iperf3 -s -B 127.0.0.1 -p "$ip" -1 >"$dir/iperf-s.out" 2>&1 & ipid=$!; pids+=("$ipid")
    # (no connect probe: the one-off server would take it as its client)
    for _ in $(seq 100); do grep -q "Server listening" "$dir/iperf-s.out" && break; sleep 0.05; done
    start_pair "$kind" "127.0.0.1:$ip"
    c0=$(cpu_ticks "$cpid"); s0=$(cpu_ticks "$spid")
    cf0=$(minor_faults "$cpid"); sf0=$(minor_faults "$spid")
    iperf3 -c "${fwd%:*}" -p "${fwd##*:}" -t "$secs" -J >"$dir/iperf.json" 2>/dev/null || true
    c1=$(cpu_ticks "$cpid"); s1=$(cpu_ticks "$spid")
    cf1=$(minor_faults "$cpid"); sf1=$(minor_faults "$spid")
    BENCH_LIB=$(dirname "${fig##* }") TLS_KIND=$tls_kind /usr/bin/python3 - "$dir/iperf.json" "$kind" "$round" \
      "$((c1 - c0))" "$((s1 - s0))" "$tck" "$((cf1 - cf0))" "$((sf1 - sf0))" <<'EOF'
import json, os, sys
sys.path.insert(0, os.environ["BENCH_LIB"])
import figure
path, kind, rnd, cticks, sticks, tck, cfaults, sfaults = sys.argv[1:]
try:
    end = json.load(open(path))["end"]["sum_received"]
    gbytes = end["bytes"] / 1e9
    gbps = end["bits_per_second"] / 1e9
    c = int(cticks) / int(tck) / gbytes
    s = int(sticks) / int(tck) / gbytes
    cf = int(cfaults) / gbytes
    sf = int(sfaults) / gbytes
    print(f"| {kind} | {rnd} | {gbps:.2f} | {c:.2f} | {s:.2f} | {cf:.0f} / {sf:.0f} |")
    peer = None if kind == "go" else "pair.gbps.go"
    figure.emit(f"pair.gbps.{kind}", "Gbit/s", [gbps], better="higher", peer=peer,
                floor="floors/loopback.gbps", label=f"{kind} pair, iperf3 one stream")
    for side, v in (("client", c), ("server", s)):
        figure.emit(f"pair.{side}_cpu.{kind}", "core-s/GB", [v], better="lower",
                    peer=None if kind == "go" else f"pair.{side}_cpu.go",
                    floor=f"floors/relay_{side}.core_s_per_gb" + (
                        "." + kind.split("-", 1)[1] if kind == os.environ["TLS_KIND"] else ""),
                    label=f"{kind} {side} side CPU per GB")
except Exception as e:
    print(f"| {kind} | {rnd} | failed ({e}) | | | |")
EOF
    stop_pair
    wait "$ipid" 2>/dev/null || true
  done
done

pings=${PINGS:-20000}
echo
echo "64-byte ping-pong, $pings round trips on one connection (microseconds):"
echo
echo "| path | round | p50 | p90 | p99 | p99.9 |"
echo "|---|---|---|---|---|---|"
start echo "$tool" echo 127.0.0.1:0
echo_addr=$addr
# pingpong_row KIND ROUND ADDR: one ping-pong run, a table row and figures.
pingpong_row() {
  local kind=$1 round=$2 target=$3 line p50
  line=$(BENCH_CDF_FILE=$dir/cdf "$tool" pingpong "$target" "$pings" || echo "p50=- p90=- p99=- p99.9=-")
  echo "| $kind | $round | $(echo "$line" | sed 's/p[0-9.]*=//g; s/ / | /g') |"
  p50=$(echo "$line" | sed -n 's/^p50=\([0-9.]*\) .*/\1/p')
  [ -n "$p50" ] || return 0
  $fig "pingpong.p50.$kind" us "$p50" --better lower --label "$kind 64 B ping-pong p50" --cdf "$dir/cdf"
  if [ "$kind" = direct ]; then
    direct_p50=$p50
  else
    local vs=(--peer pingpong.added_p50.go)
    [ "$kind" = go ] && vs=()
    $fig "pingpong.added_p50.$kind" us "$(awk -v a="$p50" -v b="$direct_p50" 'BEGIN {print a - b}')" \
      --better lower "${vs[@]}" --label "$kind added 64 B ping-pong latency (p50 minus direct)"
  fi
  rm -f "$dir/cdf"
}
for round in $(seq "$rounds"); do
  pingpong_row direct "$round" "$echo_addr"
  for kind in "${kinds[@]}"; do
    start_pair "$kind" "$echo_addr"
    pingpong_row "$kind" "$round" "$fwd"
    stop_pair
  done
done

conns=${CONNS:-2000}
echo
echo "New tunnel per TCP connection through each pair ($conns in a row, connect -> 1-byte echo, then close; the pairs' own pooled HBONE connection; microseconds):"
echo
echo "| path | round | p50 | p90 | p99 | tunnels/s |"
echo "|---|---|---|---|---|---|"
# conns_row KIND ROUND ADDR
conns_row() {
  local kind=$1 round=$2 target=$3 line p50 rate vs=()
  line=$("$tool" conns "$target" "$conns" || echo "p50=- p90=- p99=- per_s=-")
  echo "| $kind | $round | $(echo "$line" | sed 's/[a-z0-9_.]*=//g; s/ / | /g') |"
  p50=$(echo "$line" | sed -n 's/^p50=\([0-9.]*\) .*/\1/p')
  rate=$(echo "$line" | sed -n 's/.*per_s=\([0-9.]*\).*/\1/p')
  [ -n "$p50" ] && [ -n "$rate" ] || return 0
  case $kind in direct|go) ;; *) vs=(--peer "conns.per_s.go") ;; esac
  $fig "conns.per_s.$kind" 1/s "$rate" --better higher "${vs[@]}" \
    --label "$kind new tunnel per TCP connection, sequential"
  $fig "conns.p50.$kind" us "$p50" --better lower --label "$kind new tunnel per TCP connection p50"
}
for round in $(seq "$rounds"); do
  conns_row direct "$round" "$echo_addr"
  for kind in "${kinds[@]}"; do
    start_pair "$kind" "$echo_addr"
    conns_row "$kind" "$round" "$fwd"
    stop_pair
  done
done
