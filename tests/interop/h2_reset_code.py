#!/usr/bin/python3
"""Prints the RST_STREAM code python-h2 (an HTTP/2 implementation independent
of nghttp2) receives for each CONNECT, over Python's ssl (mTLS).

usage: h2_reset_code.py HOST:PORT CERT KEY CA AUTHORITY...
For each AUTHORITY: CONNECT, wait for the 200, send "x", then wait until the
server resets or ends the stream. Prints one line per authority,
"AUTHORITY reset 0xN" or "AUTHORITY ended", and exits 0; exits 1 when a
stream got no 200 or nothing happened within the time limit.
"""
import sys

import h2_mtls_client

addr, cert, key, ca = sys.argv[1:5]
authorities = sys.argv[5:]

sock, conn, session = h2_mtls_client.connect(addr, cert, key, ca)
status, ended, reset, pump = session.status, session.ended, session.reset, session.pump


ok = True
for authority in authorities:
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "CONNECT"), (":authority", authority)])
    sock.sendall(conn.data_to_send())
    pump(lambda: sid in status or sid in reset)
    if status.get(sid) != 200:
        print(f"{authority}: status {status.get(sid)}, reset {reset.get(sid)}")
        ok = False
        continue
    conn.send_data(sid, b"x")
    sock.sendall(conn.data_to_send())
    if not pump(lambda: sid in reset or sid in ended):
        print(f"{authority}: neither reset nor ended")
        ok = False
    elif sid in reset:
        print(f"{authority} reset 0x{reset[sid]:x}")
    else:
        print(f"{authority} ended")

conn.close_connection()
sock.sendall(conn.data_to_send())
sock.close()
sys.exit(0 if ok else 1)
