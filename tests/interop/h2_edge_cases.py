#!/usr/bin/python3
"""Scripted HTTP/2 edge cases against an HBONE server, driven by python-h2
(an HTTP/2 implementation independent of nghttp2) over Python's ssl (mTLS).

usage: h2_edge_cases.py HOST:PORT CERT KEY CA ECHO_HOST:PORT
Exits 0 when every case behaves, else prints what did not and exits 1.
"""
import sys

import h2_mtls_client

addr, cert, key, ca, echo = sys.argv[1:6]

sock, conn, session = h2_mtls_client.connect(addr, cert, key, ca)
status, data, ended, reset = session.status, session.data, session.ended, session.reset
pongs, goaway, pump = session.pongs, session.goaway, session.pump


failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def connect(authority):
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "CONNECT"), (":authority", authority)])
    sock.sendall(conn.data_to_send())
    return sid


# 1. A tunnel: 200, bytes echoed, END_STREAM both ways.
s1 = connect(echo)
pump(lambda: s1 in status)
check(status.get(s1) == 200, f"CONNECT {echo}: status {status.get(s1)}")
conn.send_data(s1, b"hello from python-h2")
conn.end_stream(s1)
sock.sendall(conn.data_to_send())
pump(lambda: s1 in ended or s1 in reset)
check(data.get(s1) == b"hello from python-h2", f"echo: {data.get(s1)!r}")
check(s1 in ended, "END_STREAM after the upstream's EOF")

# 2. GET is not HBONE: 400 and the stream ends.
s2 = conn.get_next_available_stream_id()
conn.send_headers(s2, [(":method", "GET"), (":scheme", "https"), (":path", "/"),
                       (":authority", echo)], end_stream=True)
sock.sendall(conn.data_to_send())
pump(lambda: s2 in ended or s2 in reset)
check(status.get(s2) == 400, f"GET: status {status.get(s2)}")

# 3. CONNECT without :authority: refused (400 or RST_STREAM).
s3 = conn.get_next_available_stream_id()
conn.send_headers(s3, [(":method", "CONNECT")])
sock.sendall(conn.data_to_send())
pump(lambda: s3 in ended or s3 in reset)
check(status.get(s3) == 400 or s3 in reset, f"no :authority: status {status.get(s3)} "
      f"reset {reset.get(s3)}")

# 4. A tunnel reset right away with CANCEL leaves the connection fine.
s4 = connect(echo)
conn.reset_stream(s4, error_code=8)
sock.sendall(conn.data_to_send())

# 5. Unreachable target: 503.
s5 = connect("127.0.0.1:1")
pump(lambda: s5 in status)
check(status.get(s5) == 503, f"unreachable: status {status.get(s5)}")

# 6. Another tunnel still works, and PING is answered.
s6 = connect(echo)
conn.ping(b"ambient!")
sock.sendall(conn.data_to_send())
pump(lambda: s6 in status and pongs)
check(status.get(s6) == 200, f"second tunnel: status {status.get(s6)}")
check(pongs == [b"ambient!"], f"ping: {pongs}")
conn.send_data(s6, b"x" * 100000)
conn.end_stream(s6)
sock.sendall(conn.data_to_send())
pump(lambda: s6 in ended or s6 in reset, rounds=2000)
check(len(data.get(s6, b"")) == 100000, f"100 kB echo: {len(data.get(s6, b''))} bytes")
check(not goaway, f"connection terminated: {goaway}")

conn.close_connection()
sock.sendall(conn.data_to_send())
sock.close()
if failures:
    print("\n".join(failures))
    sys.exit(1)
print("all h2 edge cases passed")
