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
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(0)


if __name__ == "__main__":
    main()
