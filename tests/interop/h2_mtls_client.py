"""Shared by the python-h2 interop scripts (h2_edge_cases.py,
h2_connect_error.py, h2_reset_code.py): an HBONE client connection made with
python-h2 (an HTTP/2 implementation independent of nghttp2) over Python's
ssl module, TLS 1.3 mTLS with ALPN h2."""
import socket
import ssl

import h2.config
import h2.connection


def connect(addr, cert, key, ca):
    """Connects to HOST:PORT `addr` with the SVID in `cert`/`key`, trusting
    `ca`; returns (the TLS socket, an H2Connection whose preface is sent)."""
    host, port = addr.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.check_hostname = False  # SVIDs carry SPIFFE IDs, not DNS names
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["h2"])
    sock = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10))
    assert sock.selected_alpn_protocol() == "h2", sock.selected_alpn_protocol()
    # python-h2 4.1 insists on :path/:scheme for every request unless told
    # not to validate; HBONE's CONNECT has neither.
    cfg = h2.config.H2Configuration(client_side=True, validate_outbound_headers=False,
                                    normalize_outbound_headers=False,
                                    validate_inbound_headers=False)
    conn = h2.connection.H2Connection(cfg)
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn
