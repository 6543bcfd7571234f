#!/usr/bin/python3
"""RFC 9113 section 8.5 against an HBONE server, driven by python-h2 (an
HTTP/2 implementation independent of nghttp2) over Python's ssl (mTLS).

usage: h2_connect_error.py HOST:PORT CERT KEY CA RST_UPSTREAM WATCH_UPSTREAM FIN_UPSTREAM
  RST_UPSTREAM   reads a little, then closes with RST (SO_LINGER 0)
  WATCH_UPSTREAM reads until its connection ends (the test checks how)
  FIN_UPSTREAM   writes "bye" and closes cleanly
Exits 0 when every case behaves, else prints what did not and exits 1.
"""
import sys

import h2_mtls_client

addr, cert, key, ca, rst_up, watch_up, fin_up = sys.argv[1:8]

sock, conn, session = h2_mtls_client.connect(addr, cert, key, ca)
status, data, ended, reset = session.status, session.data, session.ended, session.reset
pump = session.pump


failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def connect(authority):
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "CONNECT"), (":authority", authority)])
    sock.sendall(conn.data_to_send())
    pump(lambda: sid in status or sid in reset)
    check(status.get(sid) == 200, f"CONNECT {authority}: status {status.get(sid)}")
    return sid


# 1. The upstream resets its TCP connection: RST_STREAM(CONNECT_ERROR = 0xa).
s1 = connect(rst_up)
conn.send_data(s1, b"hello")
sock.sendall(conn.data_to_send())
pump(lambda: s1 in reset or s1 in ended)
check(reset.get(s1) == 0xA, f"upstream RST: stream reset code {reset.get(s1)} "
      f"(ended cleanly: {s1 in ended}), want 0xa CONNECT_ERROR")

# 2. We reset with CONNECT_ERROR: the server resets its upstream (checked by the test).
s2 = connect(watch_up)
conn.send_data(s2, b"x")
conn.reset_stream(s2, error_code=0xA)
sock.sendall(conn.data_to_send())

# 3. The upstream closes cleanly: its bytes, then END_STREAM, no reset.
s3 = connect(fin_up)
pump(lambda: s3 in ended or s3 in reset)
check(data.get(s3) == b"bye", f"clean upstream close: data {data.get(s3)!r}")
check(s3 in ended and s3 not in reset,
      f"clean upstream close: ended {s3 in ended}, reset {reset.get(s3)}")

conn.close_connection()
sock.sendall(conn.data_to_send())
sock.close()
if failures:
    print("\n".join(failures))
    sys.exit(1)
print("all CONNECT_ERROR cases passed")
