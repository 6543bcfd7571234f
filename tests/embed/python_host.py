#!/usr/bin/python3
"""A Python host that uses its ssl module (OpenSSL 3) and libambient in one
process: an HTTPS request to a local server, then libambient through ctypes
(run-time check, an SVID verified, an HBONE tunnel echoing bytes), then HTTPS
again.

usage: python_host.py LIBAMBIENT PKI_DIR VIA AUTHORITY TLS
  PKI_DIR from bindings/rust/testdata/gencerts.go; VIA an `ambientctl hbone
  serve` with db.pem; AUTHORITY an echo server; TLS the library's backend
  (boringssl or openssl), which ambient_tls_backend() must report.

Both builds pass here, for different reasons: the OpenSSL build shares the
libssl.so.3 Python's ssl loaded; the BoringSSL build gets away with it because
Python loads its _ssl module (and so OpenSSL) with RTLD_LOCAL, keeping
OpenSSL's symbols out of the scope libambient binds against. A C host that
links libssl (tests/embed/openssl_host.c) has no such luck with BoringSSL.
"""
import ctypes
import http.server
import os
import socket
import ssl
import sys
import threading
import urllib.request

lib_path, pki, via, authority, tls = sys.argv[1:6]
failures = 0


def check(ok, what):
    global failures
    print(("ok: " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        failures += 1


def https_round_trip():
    """A real HTTPS request through Python's ssl (OpenSSL 3) to a local server."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"hello over python ssl"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(os.path.join(pki, "db.pem"), os.path.join(pki, "db.key"))
    server.socket = sctx.wrap_socket(server.socket, server_side=True)
    t = threading.Thread(target=server.handle_request, daemon=True)
    t.start()
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.load_verify_locations(os.path.join(pki, "ca.pem"))
    cctx.check_hostname = False  # the SVID names a SPIFFE ID, not 127.0.0.1
    url = "https://127.0.0.1:%d/" % server.server_address[1]
    with urllib.request.urlopen(url, context=cctx, timeout=10) as r:
        body = r.read()
    t.join(5)
    server.server_close()
    return body == b"hello over python ssl"


print("python ssl:", ssl.OPENSSL_VERSION, flush=True)
check(https_round_trip(), "HTTPS request through Python's ssl before libambient")

amb = ctypes.CDLL(lib_path)
c_void_p = ctypes.c_void_p
amb.ambient_tls_backend.restype = ctypes.c_char_p
amb.ambient_check_runtime.restype = c_void_p
amb.ambient_error_message.restype = ctypes.c_char_p
amb.ambient_error_message.argtypes = [c_void_p]
amb.ambient_error_free.argtypes = [c_void_p]
for name in ["ambient_trust_bundles_new", "ambient_trust_bundles_set_pem", "ambient_svid_verifier_new",
             "ambient_svid_verifier_verify_pem", "ambient_hbone_tls_new_from_files",
             "ambient_runtime_loop_new", "ambient_hbone_client_new", "ambient_hbone_target_set_via",
             "ambient_hbone_target_set_authority", "ambient_hbone_target_add_expected"]:
    getattr(amb, name).restype = c_void_p
amb.ambient_hbone_target_new.restype = c_void_p
amb.ambient_hbone_client_options_new.restype = c_void_p


def ok(err, what):
    """Checks an ambient_error* is NULL (printing its message if not)."""
    if err:
        print("  ambient:", amb.ambient_error_message(err).decode(), flush=True)
        amb.ambient_error_free(err)
    check(not err, what)


check(amb.ambient_tls_backend().decode() == tls, "ambient_tls_backend() says " + tls)
ok(amb.ambient_check_runtime(), "ambient_check_runtime passes inside a Python using ssl")

bundles = c_void_p()
ok(amb.ambient_trust_bundles_new(ctypes.byref(bundles)), "trust bundles made")
ca = open(os.path.join(pki, "ca.pem"), "rb").read()
amb.ambient_trust_bundles_set_pem.argtypes = [c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
ok(amb.ambient_trust_bundles_set_pem(bundles, b"example.org", ca, len(ca)), "CA set")
verifier = c_void_p()
amb.ambient_svid_verifier_new.argtypes = [c_void_p, c_void_p, ctypes.POINTER(c_void_p)]
ok(amb.ambient_svid_verifier_new(bundles, None, ctypes.byref(verifier)), "verifier made")
amb.ambient_svid_verifier_verify_pem.argtypes = [c_void_p, ctypes.c_char_p, ctypes.c_size_t, c_void_p]
leaf = open(os.path.join(pki, "leaf.pem"), "rb").read()
ok(amb.ambient_svid_verifier_verify_pem(verifier, leaf, len(leaf), None), "leaf.pem verifies")
other = open(os.path.join(pki, "other_leaf.pem"), "rb").read()
err = amb.ambient_svid_verifier_verify_pem(verifier, other, len(other), None)
check(bool(err), "a foreign SVID is refused")
amb.ambient_error_free(err)

# An HBONE tunnel: a socketpair end handed to ambient's client, bytes echoed.
tls_obj, loop, client = c_void_p(), c_void_p(), c_void_p()
amb.ambient_hbone_tls_new_from_files.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
                                                 ctypes.c_char_p, ctypes.POINTER(c_void_p)]
ok(amb.ambient_hbone_tls_new_from_files(0, os.path.join(pki, "leaf.pem").encode(),
                                        os.path.join(pki, "leaf.key").encode(),
                                        os.path.join(pki, "ca.pem").encode(), ctypes.byref(tls_obj)),
   "HBONE client TLS")
ok(amb.ambient_runtime_loop_new(ctypes.byref(loop)), "loop made")
copts = amb.ambient_hbone_client_options_new()
amb.ambient_hbone_client_new.argtypes = [c_void_p, c_void_p, c_void_p, ctypes.POINTER(c_void_p)]
ok(amb.ambient_hbone_client_new(loop, tls_obj, copts, ctypes.byref(client)), "client made")
amb.ambient_hbone_client_options_free.argtypes = [c_void_p]
amb.ambient_hbone_client_options_free(copts)
target = amb.ambient_hbone_target_new()
for fn, value in [("ambient_hbone_target_set_via", via), ("ambient_hbone_target_set_authority", authority),
                  ("ambient_hbone_target_add_expected", "spiffe://example.org/ns/default/sa/db")]:
    getattr(amb, fn).argtypes = [c_void_p, ctypes.c_char_p]
    ok(getattr(amb, fn)(target, value.encode()), fn)
DONE = ctypes.CFUNCTYPE(None, c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_char_p)
outcome = {}


def on_done(user, code, status, message):
    outcome["code"] = code


done_cb = DONE(on_done)
ours, theirs = socket.socketpair()
amb.ambient_hbone_client_tunnel.argtypes = [c_void_p, c_void_p, ctypes.c_int, ctypes.c_int, DONE, c_void_p]
check(amb.ambient_hbone_client_tunnel(client, target, theirs.fileno(), theirs.fileno(), done_cb, None) == 0,
      "tunnel started")
amb.ambient_runtime_loop_run_for.argtypes = [c_void_p, ctypes.c_uint64]
msg = b"hello-from-python-with-ssl"
ours.sendall(msg)
ours.setblocking(False)
got = b""
for _ in range(100):
    if len(got) >= len(msg):
        break
    amb.ambient_runtime_loop_run_for(loop, 50)
    try:
        got += ours.recv(1024)
    except BlockingIOError:
        pass
check(got == msg, "bytes echoed through the HBONE tunnel")
ours.shutdown(socket.SHUT_WR)
for _ in range(100):
    if "code" in outcome:
        break
    amb.ambient_runtime_loop_run_for(loop, 50)
check(outcome.get("code") == 0, "tunnel ended cleanly")
for fn, obj in [("ambient_hbone_client_free", client), ("ambient_runtime_loop_free", loop),
                ("ambient_hbone_target_free", target), ("ambient_hbone_tls_free", tls_obj),
                ("ambient_svid_verifier_free", verifier), ("ambient_trust_bundles_free", bundles)]:
    getattr(amb, fn).argtypes = [c_void_p]
    getattr(amb, fn)(obj)

check(https_round_trip(), "HTTPS through Python's ssl still works after libambient")
print("%d failure(s)" % failures)
sys.exit(1 if failures else 0)
