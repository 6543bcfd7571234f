#!/usr/bin/python3
"""An independent gRPC server for grpc::Channel's interop test: Debian's
python3-grpcio (gRPC's C core), cleartext HTTP/2 on 127.0.0.1, an ephemeral
port printed on the first line of stdout. It serves until stdin closes.

Service test.Echo, every message raw bytes (no protobuf):
  Unary         "echo:" + request; trailing metadata x-auth = the call's
                authorization and x-timeout = whether a deadline came with it
  ServerStream  request is a count N: N messages "m0".."m<N-1>"
  Bidi          each message back, reversed, as it arrives
  Fail          aborts with PERMISSION_DENIED and a non-ASCII message
  Slow          answers after 3 s
  Big           request is a size N: one message of N bytes

With --tls DIR it serves TLS instead, with a certificate for
istiod.istio-system.svc from a CA it makes (python3-cryptography), and
writes DIR/ca.pem (that CA) and DIR/other-ca.pem (an unrelated one).
"""
import sys
import time
from concurrent import futures

import grpc


def unary(req, ctx):
    md = dict(ctx.invocation_metadata())
    remaining = ctx.time_remaining()
    ctx.set_trailing_metadata((("x-auth", md.get("authorization", "")),
                               ("x-timeout", "none" if remaining is None else "set")))
    return b"echo:" + req


def server_stream(req, ctx):
    for i in range(int(req)):
        yield b"m%d" % i


def bidi(requests, ctx):
    for m in requests:
        yield m[::-1]


def fail(req, ctx):
    ctx.abort(grpc.StatusCode.PERMISSION_DENIED, "denied: 100% sure \u2713")


def slow(req, ctx):
    time.sleep(3)
    return b"late"


def big(req, ctx):
    return b"b" * int(req)


def make_pki(directory):
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.utcnow()

    def ca(name):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        return key, cert

    ca_key, ca_cert = ca("test mesh root")
    _, other_cert = ca("unrelated root")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("istiod.istio-system.svc")]), critical=True)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    for name, c in (("ca.pem", ca_cert), ("other-ca.pem", other_cert)):
        with open(f"{directory}/{name}", "wb") as f:
            f.write(c.public_bytes(pem))
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(pem)


def main():
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
        "Big": grpc.unary_unary_rpc_method_handler(big),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                         options=[("grpc.max_send_message_length", 64 << 20)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", handlers),))
    if len(sys.argv) == 3 and sys.argv[1] == "--tls":
        key, cert = make_pki(sys.argv[2])
        port = server.add_secure_port("127.0.0.1:0",
                                      grpc.ssl_server_credentials([(key, cert)]))
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(0)


if __name__ == "__main__":
    main()
