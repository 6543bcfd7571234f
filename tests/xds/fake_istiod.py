#!/usr/bin/python3
"""A fake istiod for the xDS tests, on Debian's python3-grpcio: it serves
/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources
in cleartext HTTP/2 on 127.0.0.1 (an ephemeral port, or --port N; the port is
printed on stdout's first line), or over TLS with --tls CERT_PEM KEY_PEM; with
--max-age-ms N it sends GOAWAY on every connection N ms old (gRPC's max
connection age) and ends its calls 200 ms later; it is driven through stdin, one JSON command per line:

  {"push": {"type": URL, "nonce": N, "resources": [[name, version, any_type, hex]],
            "removed": [names]}}     send one DeltaDiscoveryResponse on the open stream
  {"push_messages": {"type": URL, "nonce": N, "any_type": URL,
                     "resources": [[name, version, message, json]], "removed": [names]}}
                                     the same, each resource built by python3-protobuf from
                                     the protobuf JSON mapping of `message`, one of
                                     "workload.Address" or "authorization.Authorization"
  {"end": true}                      end the open stream (the client reconnects)
  {"set_messages": {"type": URL, "any_type": URL, "resources": [[name, version, message, json]]}}
                                     istiod's own behaviour: the type's whole state becomes
                                     these resources; every open stream that subscribed to the
                                     type gets the difference (changed versions, removals), and
                                     a stream opened later gets, on its first request for the
                                     type, what differs from its initial_resource_versions
                                     (with --state, which also answers a first request for a
                                     type nothing was set for with an empty response, as
                                     istiod does)

Every request it receives is printed on stdout as one JSON line:
  {"type": URL, "node": ID or null, "metadata": {..}, "subscribe": [...],
   "initial": {name: version}, "nonce": N, "error": message or null,
   "auth": authorization header or null, "clusterid": clusterid header or null}

It also serves a unary /ambient.test.Echo/Echo that answers with the request's
bytes, and a unary /ambient.test.Echo/Fail that ends with grpc-status
PERMISSION_DENIED "no way".
With --ca CERT_PEM KEY_PEM it is also the Istio CA: it serves
/istio.v1.auth.IstioCertificateService/CreateCertificate, signing the CSR's key
(python3-cryptography) for the identity in the ImpersonatedIdentity metadata (else
the CSR's URI SAN) for validity_duration seconds (valid from a tenth of that, at most 5 min, ago), and answers [leaf, CA]; each such
request is printed as {"type": "ca", "identity": ID, "auth": .., "clusterid": ..}.

The messages come from PB_DIR (argv[1]): discovery_pb2.py, workload_pb2.py,
ca_pb2.py and authorization_pb2.py, which the tests generate with protoc from the library's own
lib/xds/discovery.proto, lib/xds/workload.proto and lib/authz/authorization.proto.
"""
import datetime
import json
import queue
import sys
import threading
from concurrent import futures

import grpc
from google.protobuf import json_format

sys.path.insert(0, sys.argv[1])
import discovery_pb2 as wire  # noqa: E402
import workload_pb2  # noqa: E402
import authorization_pb2  # noqa: E402
import ca_pb2  # noqa: E402

MESSAGES = {"workload.Address": workload_pb2.Address,
            "authorization.Authorization": authorization_pb2.Authorization}

streams = []  # queues of the open streams' outgoing responses
lock = threading.Lock()
# set_messages: the state per type URL, name -> (version, any_type, bytes), the
# streams (queues) subscribed to each type, and a nonce counter.
state = {}
subscribed = {}
use_state = [False]  # --state: answer every stream's first request per type from `state`
nonces = [0]


def state_response(type_url, updates, removed):
    """A DeltaDiscoveryResponse (bytes) for `updates` (names) of the state."""
    nonces[0] += 1
    res = wire.DeltaDiscoveryResponse(type_url=type_url, nonce="s%d" % nonces[0],
                                      removed_resources=sorted(removed))
    for name in sorted(updates):
        version, any_type, value = state[type_url][name]
        x = res.resources.add(name=name, version=version)
        x.resource.type_url = any_type
        x.resource.value = value
    return res.SerializeToString()


def say(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def ads(requests, ctx):
    out = queue.Queue()
    with lock:
        streams.append(out)

    def reader():
        for raw in requests:
            r = wire.DeltaDiscoveryRequest.FromString(raw)
            md = {k: v.string_value for k, v in r.node.metadata.fields.items()}
            say({"type": r.type_url, "node": r.node.id if r.HasField("node") else None,
                 "metadata": md, "subscribe": list(r.resource_names_subscribe),
                 "initial": dict(r.initial_resource_versions), "nonce": r.response_nonce,
                 "error": r.error_detail.message if r.HasField("error_detail") else None,
                 "auth": dict(ctx.invocation_metadata()).get("authorization"),
                 "clusterid": dict(ctx.invocation_metadata()).get("clusterid")})
            with lock:
                first = out not in subscribed.get(r.type_url, [])
                if use_state[0] and first and not r.response_nonce:
                    subscribed.setdefault(r.type_url, []).append(out)
                    have = dict(r.initial_resource_versions)
                    current = state.setdefault(r.type_url, {})
                    updates = [n for n, v in current.items() if have.get(n) != v[0]]
                    removed = [n for n in have if n not in current]
                    out.put(state_response(r.type_url, updates, removed))
        out.put(None)

    threading.Thread(target=reader, daemon=True).start()
    while True:
        item = out.get()
        if item is None:
            break
        yield item
    with lock:
        if out in streams:
            streams.remove(out)
        for subs in subscribed.values():
            if out in subs:
                subs.remove(out)


def set_messages(p):
    use_state[0] = True
    new = {}
    for name, version, message, body in p.get("resources", []):
        msg = json_format.ParseDict(body, MESSAGES[message]())
        new[name] = (version, p["any_type"], msg.SerializeToString())
    with lock:
        old = state.get(p["type"], {})
        state[p["type"]] = new
        updates = [n for n, v in new.items() if old.get(n) != v]
        removed = [n for n in old if n not in new]
        if updates or removed:
            for out in subscribed.get(p["type"], []):
                out.put(state_response(p["type"], updates, removed))


def commands():
    for line in sys.stdin:
        cmd = json.loads(line)
        if "set_messages" in cmd:
            set_messages(cmd["set_messages"])
            continue
        with lock:
            target = streams[-1] if streams else None
        if target is None:
            continue
        if "push" in cmd:
            p = cmd["push"]
            res = wire.DeltaDiscoveryResponse(type_url=p["type"], nonce=p["nonce"],
                                              removed_resources=p.get("removed", []))
            for name, version, any_type, hexval in p.get("resources", []):
                x = res.resources.add(name=name, version=version)
                x.resource.type_url = any_type
                x.resource.value = bytes.fromhex(hexval)
            target.put(res.SerializeToString())
        elif "push_messages" in cmd:
            p = cmd["push_messages"]
            res = wire.DeltaDiscoveryResponse(type_url=p["type"], nonce=p["nonce"],
                                              removed_resources=p.get("removed", []))
            for name, version, message, body in p.get("resources", []):
                msg = json_format.ParseDict(body, MESSAGES[message]())
                x = res.resources.add(name=name, version=version)
                x.resource.type_url = p["any_type"]
                x.resource.value = msg.SerializeToString()
            target.put(res.SerializeToString())
        elif "end" in cmd:
            target.put(None)


def echo(request, ctx):
    return request


def fail(request, ctx):
    ctx.abort(grpc.StatusCode.PERMISSION_DENIED, "no way")


def create_certificate(ca):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID
    with open(ca[0], "rb") as c, open(ca[1], "rb") as k:
        ca_pem = c.read()
        ca_cert = x509.load_pem_x509_certificate(ca_pem)
        ca_key = serialization.load_pem_private_key(k.read(), None)

    def handle(request, ctx):
        req = ca_pb2.IstioCertificateRequest.FromString(request)
        csr = x509.load_pem_x509_csr(req.csr.encode())
        ident = req.metadata.fields["ImpersonatedIdentity"].string_value \
            if "ImpersonatedIdentity" in req.metadata.fields else None
        if ident is None:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            ident = san.value.get_values_for_type(x509.UniformResourceIdentifier)[0]
        headers = dict(ctx.invocation_metadata())
        say({"type": "ca", "identity": ident, "auth": headers.get("authorization"),
             "clusterid": headers.get("clusterid")})
        now = datetime.datetime.now(datetime.timezone.utc)
        ttl = req.validity_duration or 86400
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([]))
                .issuer_name(ca_cert.subject)
                .public_key(csr.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(seconds=min(300, ttl // 10)))
                .not_valid_after(now + datetime.timedelta(seconds=ttl))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                .add_extension(x509.KeyUsage(True, False, True, False, False, False, False,
                                             False, False), True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), False)
                .add_extension(x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(ident)]), True)
                .sign(ca_key, hashes.SHA256()))
        res = ca_pb2.IstioCertificateResponse(
            cert_chain=[leaf.public_bytes(serialization.Encoding.PEM).decode(), ca_pem.decode()])
        return res.SerializeToString()
    return handle


def main():
    args = sys.argv[2:]
    port, tls, ca, options = 0, None, None, []
    while args:
        if args[0] == "--port":
            port, args = int(args[1]), args[2:]
        elif args[0] == "--max-age-ms":
            options = [("grpc.max_connection_age_ms", int(args[1])),
                       ("grpc.max_connection_age_grace_ms", 200)]
            args = args[2:]
        elif args[0] == "--state":
            use_state[0], args = True, args[1:]
        elif args[0] == "--ca":
            ca, args = (args[1], args[2]), args[3:]
        elif args[0] == "--tls":
            tls, args = (args[1], args[2]), args[3:]
        else:
            raise SystemExit("unknown flag " + args[0])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
    handler = grpc.method_handlers_generic_handler(
        "envoy.service.discovery.v3.AggregatedDiscoveryService",
        {"DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(ads)})
    unary = grpc.method_handlers_generic_handler(
        "ambient.test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo),
                              "Fail": grpc.unary_unary_rpc_method_handler(fail)})
    handlers = [handler, unary]
    if ca:
        handlers.append(grpc.method_handlers_generic_handler(
            "istio.v1.auth.IstioCertificateService",
            {"CreateCertificate": grpc.unary_unary_rpc_method_handler(create_certificate(ca))}))
    server.add_generic_rpc_handlers(tuple(handlers))
    address = "127.0.0.1:%d" % port
    if tls:
        with open(tls[0], "rb") as c, open(tls[1], "rb") as k:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        port = server.add_secure_port(address, creds)
    else:
        port = server.add_insecure_port(address)
    server.start()
    say(port)
    commands()
    server.stop(0)


if __name__ == "__main__":
    main()
