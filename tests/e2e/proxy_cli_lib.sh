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
