#!/usr/bin/env bash
# embed_test.sh c HOST MODE AMBIENTCTL LIBAMBIENT SRC
# embed_test.sh python SCRIPT TLS AMBIENTCTL LIBAMBIENT SRC
# Makes a test PKI (bindings/rust/testdata/gencerts.go), starts an echo
# server and `ambientctl hbone serve` on loopback, then runs the host program
# (the C OpenSSL host, or the Python ssl host) against them. Everything it
# starts is stopped at exit.
set -euo pipefail
kind=$1 host=$2 mode=$3 ctl=$4 lib=$5 src=$6
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
(cd "$src/bindings/rust/testdata" && GOFLAGS=-mod=mod GOPROXY=off GOCACHE=${GOCACHE:-$work/go-cache} \
  go run gencerts.go "$work") >/dev/null
/usr/bin/python3 -c '
import socket, threading
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
def echo(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=echo, args=(c,), daemon=True).start()
' >"$work/echo.port" &
pids+=($!)
via=
if [ "$kind" = python ] || [ "$mode" = works ]; then
  "$ctl" hbone serve --listen 127.0.0.1:0 --cert "$work/db.pem" --key "$work/db.key" \
    --bundle "$work/ca.pem" >"$work/serve.out" 2>"$work/serve.err" &
  pids+=($!)
fi
for _ in $(seq 1 100); do
  [ -s "$work/echo.port" ] && { [ ${#pids[@]} -lt 2 ] || grep -q listening "$work/serve.out"; } && break
  sleep 0.1
done
[ ${#pids[@]} -lt 2 ] || via=$(sed -n 's/^listening on //p' "$work/serve.out")
echo_addr=127.0.0.1:$(cat "$work/echo.port")
case "$kind" in
  c) "$host" "$work" "${via:-127.0.0.1:9}" "$echo_addr" "$mode" ;;
  python) /usr/bin/python3 "$host" "$lib" "$work" "$via" "$echo_addr" "$mode" ;;
  *) echo "unknown kind $kind"; exit 2 ;;
esac
