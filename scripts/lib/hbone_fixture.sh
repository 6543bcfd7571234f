# Sourced by scripts that run HBONE programs on loopback against a test PKI:
# scripts/test-bindings.sh, scripts/test-tls-backends.sh,
# tests/embed/embed_test.sh. Call fixture_init TOP first; everything the
# fixture starts is stopped, and its directory removed, at exit.
#   fixture_init TOP       work dir in $work, cleanup trap, PKI from
#                          bindings/rust/testdata/gencerts.go in $work
#                          (ca.pem, db.pem/.key, leaf.pem/.key, other_leaf.pem, ...)
#   fixture_echo           an echo server; sets $echo_addr (ip:port)
#   fixture_serve CTL      `CTL hbone serve` with db.pem; sets $via and $serve_pid
fixture_init() {
  local top=$1
  work=$(mktemp -d)
  pids=()
  trap fixture_cleanup EXIT
  (cd "$top/bindings/rust/testdata" && GOFLAGS=-mod=mod GOPROXY=off \
    GOCACHE=${GOCACHE:-$work/go-cache} go run gencerts.go "$work") >/dev/null
}

fixture_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}

fixture_echo() {
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
  local _
  for _ in $(seq 1 100); do [ -s "$work/echo.port" ] && break; sleep 0.1; done
  echo_addr=127.0.0.1:$(cat "$work/echo.port")
}

fixture_serve() {
  local ctl=$1 _
  : >"$work/serve.out"
  "$ctl" hbone serve --listen 127.0.0.1:0 --cert "$work/db.pem" --key "$work/db.key" \
    --bundle "$work/ca.pem" >"$work/serve.out" 2>"$work/serve.err" &
  serve_pid=$!
  pids+=($serve_pid)
  for _ in $(seq 1 100); do grep -q listening "$work/serve.out" && break; sleep 0.1; done
  via=$(sed -n 's/^listening on //p' "$work/serve.out")
}
