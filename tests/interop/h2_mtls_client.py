"""Shared by the python-h2 interop scripts (h2_edge_cases.py,
h2_connect_error.py, h2_reset_code.py): an HBONE client connection made with
python-h2 (an HTTP/2 implementation independent of nghttp2) over Python's
ssl module, TLS 1.3 mTLS with ALPN h2."""
import socket
import ssl

import h2.config
import h2.connection
import h2.events


class Session:
    """What a client saw, by stream id: response status, DATA, END_STREAM,
    RST_STREAM code; and PING acks and GOAWAY codes."""

    def __init__(self, sock, conn):
        self.sock, self.conn = sock, conn
        self.status, self.data, self.ended, self.reset = {}, {}, set(), {}
        self.pongs, self.goaway = [], []

    def pump(self, done, rounds=200):
        """Reads and handles frames until done() or the peer closes (or
        `rounds` reads); returns done()."""
        for _ in range(rounds):
            if done():
                return True
            chunk = self.sock.recv(65536)
            if not chunk:
                return done()
            for ev in self.conn.receive_data(chunk):
                if isinstance(ev, h2.events.ResponseReceived):
                    self.status[ev.stream_id] = int(dict(ev.headers)[b":status"])
                elif isinstance(ev, h2.events.DataReceived):
                    self.data[ev.stream_id] = self.data.get(ev.stream_id, b"") + ev.data
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    self.ended.add(ev.stream_id)
                elif isinstance(ev, h2.events.StreamReset):
                    self.reset[ev.stream_id] = int(ev.error_code)
                elif isinstance(ev, h2.events.PingAckReceived):
                    self.pongs.append(ev.ping_data)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    self.goaway.append(ev.error_code)
            out = self.conn.data_to_send()
            if out:
                self.sock.sendall(out)
        return done()


def connect(addr, cert, key, ca):
    """Connects to HOST:PORT `addr` with the SVID in `cert`/`key`, trusting
    `ca`; returns (the TLS socket, an H2Connection whose preface is sent,
    a Session over them)."""
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
    return sock, conn, Session(sock, conn)
