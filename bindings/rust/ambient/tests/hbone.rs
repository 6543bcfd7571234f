//! A client and a server HBONE core driven from this test's own loop over a
//! real loopback TCP pair (std::net, non-blocking), the way a Rust proxy
//! embeds the sans-IO core: feed bytes, take bytes, poll events, deadlines.
mod common;
use common::pki;
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ambient::hbone::{now_ns, Connection, Event, Role, StreamId, TlsContext};
use ambient_sys as sys;

const WEB: &str = "spiffe://example.org/ns/default/sa/web";
const DB: &str = "spiffe://example.org/ns/default/sa/db";

/// One end: a core and its socket, with the events seen so far.
struct End {
    conn: Connection,
    sock: TcpStream,
    events: Vec<Event>,
    eof: bool,
}

impl End {
    fn new(conn: Connection, sock: TcpStream) -> End {
        sock.set_nonblocking(true).unwrap();
        sock.set_nodelay(true).unwrap();
        End {
            conn,
            sock,
            events: Vec::new(),
            eof: false,
        }
    }

    /// One round: write what the core wants written, read what the socket
    /// has, run due timers, collect events.
    fn pump(&mut self) {
        let now = now_ns();
        self.conn.write_to(&mut self.sock).unwrap();
        while !self.eof {
            match self.conn.read_from(&mut self.sock, now) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    self.eof = true;
                    self.conn.receive_eof(now);
                }
                Err(e) => panic!("read: {e}"),
            }
        }
        if self.conn.next_deadline().is_some_and(|d| d <= now) {
            self.conn.on_timeout(now);
        }
        while let Some(ev) = self.conn.poll_event() {
            self.events.push(ev);
        }
        self.conn.write_to(&mut self.sock).unwrap();
    }

    fn saw(&self, f: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(f)
    }
}

/// Runs both ends until `done` holds (panics after 10 s).
fn run_until(c: &mut End, s: &mut End, what: &str, done: impl Fn(&End, &End) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(c, s) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; client events {:?}, server events {:?}",
            c.events,
            s.events
        );
        c.pump();
        s.pump();
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn pair(files: &HashMap<String, Vec<u8>>, expected: &[&str]) -> (End, End) {
    let server_tls = TlsContext::from_pem(
        Role::Server,
        &files["db.pem"],
        &files["db.key"],
        &files["ca.pem"],
    )
    .unwrap();
    let client_tls = TlsContext::from_pem(
        Role::Client,
        &files["leaf.pem"],
        &files["leaf.key"],
        &files["bundle.json"],
    )
    .unwrap();
    assert_eq!(server_tls.identity(), DB);
    assert_eq!(client_tls.identity(), WEB);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let csock = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (ssock, _) = listener.accept().unwrap();
    let mut client = Connection::client(&client_tls, expected).unwrap();
    let mut server = Connection::server(&server_tls).unwrap();
    // The contexts may go before the connections made from them.
    drop((client_tls, server_tls));
    let now = now_ns();
    client.start(now);
    server.start(now);
    assert!(client.next_deadline().is_some(), "handshake deadline armed");
    (End::new(client, csock), End::new(server, ssock))
}

fn read_all(end: &mut End, id: StreamId, into: &mut Vec<u8>) {
    let mut buf = [0u8; 8192];
    loop {
        let n = end.conn.stream_read(id, &mut buf).unwrap();
        if n == 0 {
            return;
        }
        into.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn connect_stream_moves_bytes_both_ways_over_loopback_tcp() {
    let files = pki();
    let (mut c, mut s) = pair(files, &[DB]);
    run_until(&mut c, &mut s, "handshakes", |c, s| {
        c.saw(|e| *e == Event::HandshakeDone) && s.saw(|e| *e == Event::HandshakeDone)
    });
    assert_eq!(c.conn.peer_identity(), DB);
    assert_eq!(s.conn.peer_identity(), WEB);
    assert!(c.conn.can_open_stream());

    let id = c
        .conn
        .open_stream(
            "127.0.0.1:9080",
            &[("baggage", b"k8s.pod.name=web".as_slice())],
        )
        .unwrap();
    run_until(&mut c, &mut s, "the CONNECT", |_, s| {
        s.saw(|e| matches!(e, Event::StreamRequest { .. }))
    });
    let (sid, authority, headers) = s
        .events
        .iter()
        .find_map(|e| match e {
            Event::StreamRequest {
                stream,
                authority,
                headers,
            } => Some((*stream, authority.clone(), headers.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(authority, "127.0.0.1:9080");
    assert!(
        headers.contains(&("baggage".to_string(), b"k8s.pod.name=web".to_vec())),
        "{headers:?}"
    );
    s.conn.accept_stream(sid).unwrap();
    run_until(&mut c, &mut s, "the 200", |c, _| {
        c.saw(|e| {
            *e == Event::StreamResponse {
                stream: id,
                http_status: 200,
            }
        })
    });

    // Client to server: a small request, then EOF.
    assert_eq!(c.conn.stream_write(id, b"ping").unwrap(), 4);
    c.conn.stream_shutdown_write(id).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.conn.stream_at_eof(sid) {
        assert!(Instant::now() < deadline, "server never saw EOF: {got:?}");
        c.pump();
        s.pump();
        read_all(&mut s, sid, &mut got);
    }
    assert_eq!(got, b"ping");

    // Server to client: more than one flow-control window (64 KiB), so the
    // client's reads must release window for the rest to come.
    let reply: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut sent = 0;
    let mut back = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c.conn.stream_at_eof(id) {
        assert!(
            Instant::now() < deadline,
            "reply stuck at {} bytes",
            back.len()
        );
        if sent < reply.len() {
            sent += s.conn.stream_write(sid, &reply[sent..]).unwrap();
            if sent == reply.len() {
                s.conn.stream_shutdown_write(sid).unwrap();
            }
        }
        s.pump();
        c.pump();
        read_all(&mut c, id, &mut back);
    }
    assert_eq!(back.len(), reply.len());
    assert!(back == reply, "reply corrupted");
    run_until(&mut c, &mut s, "both stream ends", |c, s| {
        c.saw(|e| matches!(e, Event::StreamClosed { stream, result: Ok(()) } if *stream == id))
            && s.saw(
                |e| matches!(e, Event::StreamClosed { stream, result: Ok(()) } if *stream == sid),
            )
    });
    // A released id is unknown now.
    let err = c.conn.stream_write(id, b"x").unwrap_err();
    assert_eq!(err.code, sys::AMBIENT_ERR_NOT_FOUND);

    // Draining the client ends the connection on both sides.
    c.conn.drain();
    run_until(&mut c, &mut s, "the close", |c, _| c.conn.is_closed());
    assert!(c.saw(|e| matches!(e, Event::ConnectionClosed { .. })));
}

#[test]
fn rejected_connect_reaches_the_client_as_its_status() {
    let files = pki();
    let (mut c, mut s) = pair(files, &[]);
    run_until(&mut c, &mut s, "handshakes", |c, s| {
        c.saw(|e| *e == Event::HandshakeDone) && s.saw(|e| *e == Event::HandshakeDone)
    });
    let id = c.conn.open_stream("10.0.0.1:80", &[]).unwrap();
    run_until(&mut c, &mut s, "the CONNECT", |_, s| {
        s.saw(|e| matches!(e, Event::StreamRequest { .. }))
    });
    let sid = s
        .events
        .iter()
        .find_map(|e| match e {
            Event::StreamRequest { stream, .. } => Some(*stream),
            _ => None,
        })
        .unwrap();
    s.conn.reject_stream(sid, 401).unwrap();
    run_until(&mut c, &mut s, "the 401", |c, _| {
        c.saw(|e| {
            *e == Event::StreamResponse {
                stream: id,
                http_status: 401,
            }
        }) && c.saw(|e| matches!(e, Event::StreamClosed { stream, .. } if *stream == id))
    });
    // Bad arguments are refused without touching the connection.
    assert_eq!(
        s.conn.reject_stream(StreamId(12345), 401).unwrap_err().code,
        sys::AMBIENT_ERR_NOT_FOUND
    );
    assert_eq!(
        s.conn.open_stream("10.0.0.1:80", &[]).unwrap_err().code,
        sys::AMBIENT_ERR_FAILED_PRECONDITION
    );
    assert_eq!(
        c.conn.open_stream("no port", &[]).unwrap_err().code,
        sys::AMBIENT_ERR_INVALID_ARGUMENT
    );
    assert!(!c.conn.is_closed());
}

#[test]
fn server_with_an_unexpected_identity_is_refused() {
    let files = pki();
    let (mut c, mut s) = pair(files, &["spiffe://example.org/ns/default/sa/other"]);
    run_until(&mut c, &mut s, "the client to give up", |c, _| {
        c.conn.is_closed()
    });
    assert!(!c.saw(|e| *e == Event::HandshakeDone), "{:?}", c.events);
    let failure = c
        .events
        .iter()
        .find_map(|e| match e {
            Event::ConnectionClosed { result: Err(e) } => Some(e.clone()),
            _ => None,
        })
        .expect("ConnectionClosed with an error");
    assert!(
        failure.code == sys::AMBIENT_ERR_PERMISSION_DENIED
            || failure.code == sys::AMBIENT_ERR_UNAUTHENTICATED,
        "{failure:?}"
    );
    assert_eq!(c.conn.peer_identity(), "");
    // The client's alert (or EOF) ends the server side too.
    run_until(&mut c, &mut s, "the server to close", |_, s| {
        s.conn.is_closed()
    });
    assert!(!s.saw(|e| matches!(e, Event::StreamRequest { .. })));
}

#[test]
fn bad_credentials_and_expected_ids_are_refused() {
    let files = pki();
    let e = TlsContext::from_pem(Role::Client, b"junk", &files["leaf.key"], &files["ca.pem"])
        .err()
        .unwrap();
    assert_eq!(e.code, sys::AMBIENT_ERR_INVALID_ARGUMENT);
    // The key of another certificate.
    let e = TlsContext::from_pem(
        Role::Server,
        &files["leaf.pem"],
        &files["db.key"],
        &files["ca.pem"],
    )
    .err()
    .unwrap();
    assert_eq!(e.code, sys::AMBIENT_ERR_INVALID_ARGUMENT);
    let e = TlsContext::from_files(
        Role::Server,
        std::path::Path::new("/nonexistent/cert.pem"),
        std::path::Path::new("/nonexistent/key.pem"),
        std::path::Path::new("/nonexistent/ca.pem"),
    )
    .err()
    .unwrap();
    assert_eq!(e.code, sys::AMBIENT_ERR_NOT_FOUND);
    assert!(e.message.contains("/nonexistent/cert.pem"), "{}", e.message);
    let tls = TlsContext::from_pem(
        Role::Client,
        &files["leaf.pem"],
        &files["leaf.key"],
        &files["ca.pem"],
    )
    .unwrap();
    let e = Connection::client(&tls, &["not a spiffe id"])
        .err()
        .unwrap();
    assert_eq!(e.code, sys::AMBIENT_ERR_INVALID_ARGUMENT);
}

#[test]
fn reset_codes_reach_the_peer() {
    use ambient::hbone::ResetCode;
    let files = pki();
    let (mut c, mut s) = pair(files, &[]);
    run_until(&mut c, &mut s, "handshakes", |c, s| {
        c.saw(|e| *e == Event::HandshakeDone) && s.saw(|e| *e == Event::HandshakeDone)
    });
    // CONNECT_ERROR is an error naming it at the peer (its proxy resets its
    // TCP side); CANCEL is a clean end.
    for (code, want_err) in [
        (ResetCode::ConnectError, Some("CONNECT_ERROR")),
        (ResetCode::Cancel, None),
    ] {
        s.events.clear();
        let id = c.conn.open_stream("10.0.0.1:80", &[]).unwrap();
        run_until(&mut c, &mut s, "the CONNECT", |_, s| {
            s.saw(|e| matches!(e, Event::StreamRequest { .. }))
        });
        let sid = s
            .events
            .iter()
            .find_map(|e| match e {
                Event::StreamRequest { stream, .. } => Some(*stream),
                _ => None,
            })
            .unwrap();
        s.conn.accept_stream(sid).unwrap();
        run_until(&mut c, &mut s, "the 200", |c, _| {
            c.saw(|e| {
                *e == Event::StreamResponse {
                    stream: id,
                    http_status: 200,
                }
            })
        });
        assert_eq!(
            s.conn
                .stream_reset_with(StreamId(12345), code)
                .unwrap_err()
                .code,
            sys::AMBIENT_ERR_NOT_FOUND
        );
        s.conn.stream_reset_with(sid, code).unwrap();
        run_until(&mut c, &mut s, "the reset", |c, _| {
            c.saw(|e| matches!(e, Event::StreamClosed { stream, .. } if *stream == id))
        });
        let result = c
            .events
            .iter()
            .find_map(|e| match e {
                Event::StreamClosed { stream, result } if *stream == id => Some(result.clone()),
                _ => None,
            })
            .unwrap();
        match want_err {
            None => assert!(result.is_ok(), "{code:?}: {result:?}"),
            Some(w) => {
                let e = result.unwrap_err();
                assert!(e.message.contains(w), "{code:?}: {}", e.message);
            }
        }
    }
}
