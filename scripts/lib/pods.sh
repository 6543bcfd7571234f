# Sourced by scripts/demo.sh and scripts/demo-xds.sh: the pieces of their
# namespace topology and demo PKI. Needs root (ip netns) and openssl.

# pod_link NODE POD DEV N [v6]: a veth DEV in netns NODE whose peer is eth0 in
# netns POD; NODE gets 198.18.N.1/24 and POD 198.18.N.2/24 with its default
# route via NODE (with v6 also 2001:db8:N::1/64 and ::2/64, no DAD).
pod_link() {
  local node=$1 pod=$2 dev=$3 n=$4 v6=${5:-}
  ip -n "$node" link add "$dev" type veth peer name eth0 netns "$pod"
  ip -n "$node" addr add "198.18.$n.1/24" dev "$dev"
  ip -n "$node" link set "$dev" up
  ip -n "$pod" addr add "198.18.$n.2/24" dev eth0
  ip -n "$pod" link set eth0 up
  ip -n "$pod" route add default via "198.18.$n.1"
  if [ "$v6" = v6 ]; then
    ip -n "$node" addr add "2001:db8:$n::1/64" dev "$dev" nodad
    ip -n "$pod" addr add "2001:db8:$n::2/64" dev eth0 nodad
    ip -n "$pod" route add default via "2001:db8:$n::1"
  fi
}

# demo_ca DIR SUBJECT: a P-256 CA for a day, DIR/ca.key and DIR/ca.pem.
demo_ca() {
  openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
    openssl pkcs8 -topk8 -nocrypt -out "$1/ca.key"
  openssl req -x509 -new -key "$1/ca.key" -subj "$2" -days 1 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$1/ca.pem" 2>/dev/null
}

# demo_cert DIR NAME EXT...: a P-256 key DIR/NAME.key and a certificate
# DIR/NAME.pem signed by DIR/ca.{pem,key}, each EXT an openssl extension line
# (e.g. "subjectAltName=URI:spiffe://cluster.local/ns/demo/sa/client").
demo_cert() {
  local dir=$1 name=$2
  shift 2
  openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
    openssl pkcs8 -topk8 -nocrypt -out "$dir/$name.key"
  openssl req -new -key "$dir/$name.key" -subj "/O=ambient demo" -out "$dir/$name.csr" 2>/dev/null
  printf '%s\n' "$@" >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 1 -extfile "$dir/$name.ext" -out "$dir/$name.pem" 2>/dev/null
}
