#!/usr/bin/env bash
# node-proxy --admin as a user runs it (no root, no node agent): GET
# /config_dump is ztunnel-shaped JSON holding the workload of the file config
# and the policy of the policy file; GET /logging reports the level; POST
# /logging?level= changes which lines the running proxy prints (debug lines
# appear, info lines stop and come back); a bad level is a 400 that changes
# nothing. Bad --admin and --log-level values are usage errors (2); a taken
# address is a failure (1); --log-level warn hides the info lines from the start.
# Usage: node_proxy_admin_test.sh NODE_PROXY
set -u
proxy=$1
py=/usr/bin/python3
# shellcheck source=tests/e2e/proxy_cli_lib.sh
source "$(dirname "$0")/proxy_cli_lib.sh"
cat > "$tmp/node.json" <<JSON
{"trust_domain": "cluster.local", "trust_bundle": "ca.pem",
 "workloads": [{"uid": "Kubernetes//Pod/shop/web-0", "name": "web-0", "namespace": "shop",
                "service_account": "web", "addresses": ["198.18.0.10"]}]}
JSON
cat > "$tmp/policy.json" <<JSON
{"policies": [{"name": "deny-evil", "namespace": "shop", "scope": "NAMESPACE", "action": "DENY",
  "rules": [{"clauses": [{"matches": [{"principals": [{"exact": "cluster.local/ns/evil/sa/x"}]}]}]}]}]}
JSON

out=$("$proxy" --config "$tmp/node.json" --admin nowhere 2>&1)
check "--admin nowhere exits 2 ($?): $out" [ $? -eq 2 ]
out=$("$proxy" --config "$tmp/node.json" --admin 2>&1)
check "--admin without a value: $out" grep -q -- "--admin needs a value" <<<"$out"
out=$("$proxy" --config "$tmp/node.json" --log-level loud 2>&1)
check "--log-level loud exits 2 ($?): $out" [ $? -eq 2 ]
check "--log-level loud says what is allowed: $out" \
  grep -q -- "--log-level must be debug, info, warn or error" <<<"$out"
help=$("$proxy" --help)
check "--help mentions --admin" grep -q -- "--admin ADDR" <<<"$help"
check "--help mentions --log-level" grep -q -- "--log-level LEVEL" <<<"$help"

# http METHOD PATH -> "STATUS\nBODY" (python3's client: a second, independent HTTP implementation).
http() {
  "$py" - "$port" "$1" "$2" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
c.request(sys.argv[2], sys.argv[3])
r = c.getresponse()
print(r.status)
print(r.getheader("Content-Type"))
sys.stdout.write(r.read().decode())
PY
}

"$proxy" --config "$tmp/node.json" --policy "$tmp/policy.json" --zds-socket "$tmp/none.sock" \
  --admin 127.0.0.1:0 --dns off >"$tmp/proxy.log" 2>&1 &
pid=$!
wait_port admin /config_dump

# The level first: debug lines must appear only after the change (the
# admin endpoint logs each request it answers at debug).
r=$(http GET /logging)
check "GET /logging is 200 info: $r" [ "$r" = "$(printf '200\ntext/plain; charset=utf-8\ncurrent log level is info')" ]
check "no debug line at level info" [ "$(grep -c '  debug ' "$tmp/proxy.log")" -eq 0 ]
r=$(http POST '/logging?level=debug')
check "POST /logging?level=debug is 200: $r" grep -q '^current log level is debug$' <<<"$r"
check "a debug line appears after the change" \
  grep -q '  debug admin  POST /logging?level=debug HTTP/1.1 -> 200$' "$tmp/proxy.log"
check "the change is logged" grep -q 'log level set to debug' "$tmp/proxy.log"
r=$(http POST '/logging?level=verbose')
check "a bad level is 400: $r" [ "$(head -1 <<<"$r")" = 400 ]
check "a bad level says why: $r" grep -q '^Invalid level provided: verbose$' <<<"$r"
check "a bad level changes nothing" grep -q '^current log level is debug$' <<<"$(http GET /logging)"
check "the bad request is logged at debug" \
  grep -q '  debug admin  POST /logging?level=verbose HTTP/1.1 -> 400$' "$tmp/proxy.log"
r=$(http GET '/logging?level=error')
check "GET cannot change the level: $r" [ "$(head -1 <<<"$r")" = 405 ]

# error: SIGHUP's info line is not printed; info again: it is.
r=$(http POST '/logging?level=error')
check "POST /logging?level=error is 200: $r" grep -q '^current log level is error$' <<<"$r"
kill -HUP "$pid"
sleep 0.5
check "no info line at level error" [ "$(grep -c 'workloads: 1 from' "$tmp/proxy.log")" -eq 0 ]
http POST '/logging?level=info' >/dev/null
kill -HUP "$pid"
for _ in $(seq 50); do grep -q 'workloads: 1 from' "$tmp/proxy.log" && break; sleep 0.1; done
check "info lines again at level info" grep -q 'workloads: 1 from' "$tmp/proxy.log"

# The config dump: JSON in ztunnel's shape with what the files hold.
http GET /config_dump >"$tmp/dump"
check "GET /config_dump is 200 application/json" \
  [ "$(head -2 "$tmp/dump" | tr '\n' ' ')" = "200 application/json " ]
tail -n +3 "$tmp/dump" >"$tmp/dump.json"
check "the dump holds the config's workload and policy" "$py" - "$tmp/dump.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert sorted(d) == ["certificates", "policies", "services", "workloads"], sorted(d)
[w] = d["workloads"]
want = {"uid": "Kubernetes//Pod/shop/web-0", "name": "web-0", "namespace": "shop",
        "serviceAccount": "web", "trustDomain": "cluster.local", "workloadIps": ["198.18.0.10"],
        "protocol": "HBONE", "status": "Healthy"}
for k, v in want.items():
    assert w.get(k) == v, (k, w.get(k), v)
[p] = d["policies"]
assert (p["name"], p["namespace"], p["scope"], p["action"]) == \
    ("deny-evil", "shop", "Namespace", "Deny"), p
assert p["rules"] == [[[{"principals": [{"Exact": "cluster.local/ns/evil/sa/x"}]}]]], p["rules"]
assert d["services"] == [] and d["certificates"] == [], d  # no pod captured: no certificate
PY
r=$(http GET /nope)
check "unknown path 404: $r" [ "$(head -1 <<<"$r")" = 404 ]
r=$(http POST /config_dump)
check "POST /config_dump 405: $r" [ "$(head -1 <<<"$r")" = 405 ]

out=$(timeout 10 "$proxy" --config "$tmp/node.json" --zds-socket "$tmp/none.sock" --dns off \
  --admin "127.0.0.1:$port" 2>&1)
check "a taken --admin address exits 1 with the reason ($?): $out" \
  grep -q -- "--admin 127.0.0.1:$port" <<<"$out"

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
check "node-proxy exits 0 on SIGTERM (got $rc)" [ "$rc" -eq 0 ]
[ $fail -eq 0 ] || cat "$tmp/proxy.log" >&2

# --log-level warn from the start: no info line at all.
timeout -s INT 1 "$proxy" --config "$tmp/node.json" --zds-socket "$tmp/none.sock" --dns off \
  --log-level warn >"$tmp/quiet.log" 2>&1
check "--log-level warn prints no info line: $(cat "$tmp/quiet.log")" \
  [ "$(grep -c '  info ' "$tmp/quiet.log")" -eq 0 ]
exit $fail
