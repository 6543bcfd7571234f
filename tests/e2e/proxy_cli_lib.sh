# Sourced by the node-proxy CLI tests (node_proxy_metrics_test.sh,
# node_proxy_admin_test.sh): a temp dir removed on exit with the proxy the
# test started ($pid), a check helper that records failures in $fail, and a
# throw-away CA ($tmp/ca.pem) for the node config's trust bundle.
fail=0
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
check() {  # check WHAT CONDITION...
  local what=$1
  shift
  if ! "$@"; then
    echo "FAIL: $what" >&2
    fail=1
  fi
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=test-ca -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>/dev/null || { echo "openssl failed" >&2; exit 1; }
# wait_port WHAT PATH: sets $port to the port the proxy logged in
# $tmp/proxy.log as "WHAT: http://127.0.0.1:PORT/PATH"; fails the test when
# it did not within 5 s.
wait_port() {
  port=
  for _ in $(seq 100); do
    port=$(sed -n "s|.*$1: http://127\.0\.0\.1:\([0-9]*\)$2.*|\1|p" "$tmp/proxy.log")
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  echo "FAIL: node-proxy did not report its $1 address:" >&2
  cat "$tmp/proxy.log" >&2
  exit 1
}
