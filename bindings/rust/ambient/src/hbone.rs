//! HBONE tunnels (TLS 1.3 mutual TLS + HTTP/2 CONNECT) without I/O: the host
//! owns the sockets, the threads and the clock.
//!
//! A [`Connection`] is driven from the host's own event loop:
//!
//! 1. [`Connection::start`] once (a client produces its ClientHello);
//! 2. bytes read from the transport go into [`Connection::receive`]
//!    (end of file into [`Connection::receive_eof`]), or in one step
//!    [`Connection::read_from`] any `std::io::Read`;
//! 3. what the connection wants written comes out of
//!    [`Connection::pending_output`] + [`Connection::consume_output`], or in
//!    one step [`Connection::write_to`] any `std::io::Write`;
//! 4. after every call, [`Connection::poll_event`] until it returns `None`;
//! 5. when [`Connection::next_deadline`] has passed, [`Connection::on_timeout`].
//!
//! Time is the host's: monotonic nanoseconds of any origin ([`now_ns`] gives
//! one). No callback ever re-enters the host.
//!
//! A client over a blocking-with-timeout `TcpStream`, in outline:
//!
//! ```no_run
//! use std::io::ErrorKind;
//! use std::net::TcpStream;
//! use std::time::Duration;
//! use ambient::hbone::{now_ns, Connection, Event, Role, TlsContext};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tls = TlsContext::from_files(Role::Client, "cert.pem".as_ref(),
//!                                  "key.pem".as_ref(), "bundle.pem".as_ref())?;
//! let mut conn = Connection::client(&tls, &["spiffe://cluster.local/ns/db/sa/db"])?;
//! let mut sock = TcpStream::connect("10.0.0.2:15008")?;
//! conn.start(now_ns());
//! let mut stream = None;
//! while !conn.is_closed() {
//!     if conn.next_deadline().is_some_and(|d| d <= now_ns()) {
//!         conn.on_timeout(now_ns());
//!     }
//!     conn.write_to(&mut sock)?;
//!     // Wait for bytes at most until the next deadline (None: no deadline).
//!     let wait = conn.timeout(now_ns()).map(|t| t.max(Duration::from_millis(1)));
//!     sock.set_read_timeout(wait)?;
//!     match conn.read_from(&mut sock, now_ns()) {
//!         Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
//!         r => { r?; }
//!     }
//!     while let Some(ev) = conn.poll_event() {
//!         match ev {
//!             Event::HandshakeDone => stream = Some(conn.open_stream("10.0.0.2:9080", &[])?),
//!             Event::StreamResponse { stream: id, http_status: 200 } => {
//!                 conn.stream_write(id, b"hello")?;
//!                 conn.stream_shutdown_write(id)?;
//!             }
//!             Event::StreamReadable(id) => {
//!                 let mut buf = [0u8; 4096];
//!                 let n = conn.stream_read(id, &mut buf)?;
//!                 println!("{:?}", &buf[..n]);
//!             }
//!             Event::StreamClosed { .. } => conn.drain(),
//!             _ => {}
//!         }
//!     }
//! }
//! # let _ = stream;
//! # Ok(())
//! # }
//! ```
use std::ffi::CString;
use std::io;
use std::os::raw::c_char;
use std::path::Path;
use std::ptr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ambient_sys as sys;

use crate::identity::{check, cstring, lent};
use crate::runtime::Owned;
use crate::Error;

/// Which end of HBONE an object is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opens CONNECT streams; verifies the server against expected identities.
    Client,
    /// Accepts CONNECT streams from clients of its own trust domain.
    Server,
}

impl Role {
    fn raw(self) -> sys::ambient_hbone_role {
        match self {
            Role::Client => sys::AMBIENT_HBONE_CLIENT,
            Role::Server => sys::AMBIENT_HBONE_SERVER,
        }
    }
}

/// Monotonic nanoseconds since the first call in this process: a clock for
/// the `now` arguments (any monotonic origin works).
pub fn now_ns() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
}

pub(crate) fn code_error(rc: i32) -> Error {
    Error {
        code: rc,
        detail: 0,
        message: String::new(),
    }
}

fn rc_result(rc: i32) -> Result<usize, Error> {
    if rc < 0 {
        Err(code_error(rc))
    } else {
        Ok(rc as usize)
    }
}

/// The TLS side of HBONE for one role: our credentials, the trust bundle of
/// our trust domain and ambient's SPIFFE verifier on an `SSL_CTX` of libambient's TLS library.
/// Shared by any number of connections on any threads (`Send + Sync`); a
/// connection keeps what it needs, so this may be dropped before them.
pub struct TlsContext {
    pub(crate) ptr: *mut sys::ambient_hbone_tls,
    role: Role,
}

// SAFETY: ambient_hbone_tls may be used by connections on any threads.
unsafe impl Send for TlsContext {}
unsafe impl Sync for TlsContext {}

impl TlsContext {
    /// Our certificate chain (`cert_pem`, leaf first, one SPIFFE ID URI
    /// SAN), its private key and the trust bundle of our trust domain (PEM,
    /// or SPIFFE bundle JSON). Errors: `AMBIENT_ERR_INVALID_ARGUMENT`
    /// (unparsable PEM/JSON, key not matching, leaf without SPIFFE ID),
    /// `AMBIENT_ERR_FAILED_PRECONDITION` (not libambient's TLS library).
    pub fn from_pem(
        role: Role,
        cert_pem: &[u8],
        key_pem: &[u8],
        bundle: &[u8],
    ) -> Result<TlsContext, Error> {
        // SAFETY: no arguments; the result is owned by the guard.
        let o = Owned::new(
            unsafe { sys::ambient_hbone_tls_options_new() },
            sys::ambient_hbone_tls_options_free,
        )?;
        let mut out = ptr::null_mut();
        // SAFETY: a live options object; the buffers are live for each call
        // and copied by it; the options are read, not kept, by the last call.
        unsafe {
            check(sys::ambient_hbone_tls_options_set_cert_chain_pem(
                o.ptr,
                cert_pem.as_ptr().cast(),
                cert_pem.len(),
            ))?;
            check(sys::ambient_hbone_tls_options_set_private_key_pem(
                o.ptr,
                key_pem.as_ptr().cast(),
                key_pem.len(),
            ))?;
            check(sys::ambient_hbone_tls_options_set_trust_bundle(
                o.ptr,
                bundle.as_ptr().cast(),
                bundle.len(),
            ))?;
            check(sys::ambient_hbone_tls_new(role.raw(), o.ptr, &mut out))?;
        }
        Ok(TlsContext { ptr: out, role })
    }

    /// [`TlsContext::from_pem`] reading three files; an unreadable file is
    /// `AMBIENT_ERR_NOT_FOUND` or `AMBIENT_ERR_PERMISSION_DENIED`.
    pub fn from_files(
        role: Role,
        cert: &Path,
        key: &Path,
        bundle: &Path,
    ) -> Result<TlsContext, Error> {
        let path = |p: &Path| cstring(&p.to_string_lossy());
        let (c, k, b) = (path(cert)?, path(key)?, path(bundle)?);
        let mut out = ptr::null_mut();
        // SAFETY: live strings.
        unsafe {
            check(sys::ambient_hbone_tls_new_from_files(
                role.raw(),
                c.as_ptr(),
                k.as_ptr(),
                b.as_ptr(),
                &mut out,
            ))?;
        }
        Ok(TlsContext { ptr: out, role })
    }

    /// Wraps the host's own `SSL_CTX` (HBONE policy applied:
    /// TLS 1.3 only, ALPN h2, no tickets); it must verify peers. The object
    /// takes its own reference.
    ///
    /// # Safety
    /// `ssl_ctx` must be a live `SSL_CTX*` of the TLS library libambient uses
    /// ([`crate::tls_backend`]).
    pub unsafe fn from_ssl_ctx(
        role: Role,
        ssl_ctx: *mut std::os::raw::c_void,
    ) -> Result<TlsContext, Error> {
        let mut out = ptr::null_mut();
        check(sys::ambient_hbone_tls_new_from_ssl_ctx(
            role.raw(),
            ssl_ctx,
            &mut out,
        ))?;
        Ok(TlsContext { ptr: out, role })
    }

    /// The role this context was made for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Our own SPIFFE ID ("" for a host `SSL_CTX`).
    pub fn identity(&self) -> String {
        // SAFETY: live handle; the string lives as long as it.
        lent(unsafe { sys::ambient_hbone_tls_get0_identity(self.ptr) })
    }
}

impl Drop for TlsContext {
    fn drop(&mut self) {
        // SAFETY: we own the context; connections keep their own references.
        unsafe { sys::ambient_hbone_tls_free(self.ptr) }
    }
}

/// A CONNECT stream on a [`Connection`]; valid until its
/// [`Event::StreamClosed`] was polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub i32);

/// What happened on a connection, polled with [`Connection::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// TLS and HTTP/2 are up; [`Connection::peer_identity`] is known.
    HandshakeDone,
    /// Server: a CONNECT arrived. Answer with [`Connection::accept_stream`]
    /// or [`Connection::reject_stream`].
    StreamRequest {
        stream: StreamId,
        authority: String,
        /// The other request headers (names lowercase), in order.
        headers: Vec<(String, Vec<u8>)>,
    },
    /// Client: the CONNECT response (200 = open).
    StreamResponse { stream: StreamId, http_status: u16 },
    /// Bytes or the end of the stream can be read.
    StreamReadable(StreamId),
    /// [`Connection::stream_write`] takes more.
    StreamWritable(StreamId),
    /// The stream is over and its id released; `Err` for a failure.
    StreamClosed {
        stream: StreamId,
        result: Result<(), Error>,
    },
    /// The peer takes no new streams here.
    GoAway,
    /// The connection is over: flush the pending output, close the transport.
    ConnectionClosed { result: Result<(), Error> },
}

/// One HBONE connection that never touches sockets, threads or clocks
/// (see the module documentation for how to drive it). `Send`, used by one
/// thread at a time.
pub struct Connection {
    ptr: *mut sys::ambient_hbone_conn,
}

// SAFETY: a connection may move between threads; &mut self serializes use,
// and the &self getters only read.
unsafe impl Send for Connection {}

fn result_of(code: i32, message: *const c_char, len: usize) -> Result<(), Error> {
    if code == sys::AMBIENT_OK {
        return Ok(());
    }
    let message = if message.is_null() {
        String::new()
    } else {
        // SAFETY: lent until the next poll, which has not happened yet.
        String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(message.cast::<u8>(), len) })
            .into_owned()
    };
    Err(Error {
        code,
        detail: 0,
        message,
    })
}

fn lossy(p: *const c_char, len: usize) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the caller passes a lent buffer of `len` bytes.
    String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }).into_owned()
}

impl Connection {
    /// A connection of `tls`'s role. A client's server must present one of
    /// `expected_ids` (empty: any identity the bundle verifies). Call
    /// [`Connection::start`] next. Errors: `AMBIENT_ERR_INVALID_ARGUMENT`
    /// (a malformed expected identity).
    pub fn new(tls: &TlsContext, expected_ids: &[&str]) -> Result<Connection, Error> {
        let ids = expected_ids
            .iter()
            .map(|s| cstring(s))
            .collect::<Result<Vec<CString>, Error>>()?;
        let ptrs: Vec<*const c_char> = ids.iter().map(|s| s.as_ptr()).collect();
        let mut out = ptr::null_mut();
        // SAFETY: live handle and strings.
        unsafe {
            check(sys::ambient_hbone_conn_new(
                tls.ptr,
                ptrs.as_ptr(),
                ptrs.len(),
                &mut out,
            ))?;
        }
        Ok(Connection { ptr: out })
    }

    /// A client connection expecting one of `expected_ids`.
    pub fn client(tls: &TlsContext, expected_ids: &[&str]) -> Result<Connection, Error> {
        Self::new(tls, expected_ids)
    }

    /// A server connection.
    pub fn server(tls: &TlsContext) -> Result<Connection, Error> {
        Self::new(tls, &[])
    }

    /// Starts at `now` (ns): a client produces its ClientHello; both sides
    /// arm the 10 s handshake deadline.
    pub fn start(&mut self, now: u64) {
        // SAFETY: live handle.
        unsafe { sys::ambient_hbone_conn_start(self.ptr, now) }
    }

    /// Feeds bytes read from the transport (all of them). An `Err` is the
    /// failure that closed the connection (`AMBIENT_ERR_UNAUTHENTICATED` /
    /// `AMBIENT_ERR_PERMISSION_DENIED` for TLS and identity failures,
    /// `AMBIENT_ERR_INVALID_ARGUMENT` for malformed HTTP/2,
    /// `AMBIENT_ERR_DATA_LOSS` for broken TLS records); the pending output
    /// is still worth sending.
    pub fn receive(&mut self, data: &[u8], now: u64) -> Result<(), Error> {
        // SAFETY: live handle and buffer.
        let rc =
            unsafe { sys::ambient_hbone_conn_receive(self.ptr, data.as_ptr(), data.len(), now) };
        rc_result(rc).map(|_| ())
    }

    /// The transport delivers no more bytes.
    pub fn receive_eof(&mut self, now: u64) {
        // SAFETY: live handle.
        unsafe { sys::ambient_hbone_conn_receive_eof(self.ptr, now) }
    }

    /// The bytes waiting to be written to the transport (empty if none).
    /// After writing n of them, call [`Connection::consume_output`].
    pub fn pending_output(&mut self) -> &[u8] {
        let (mut data, mut len) = (ptr::null(), 0usize);
        // SAFETY: live handle; the buffer is lent until the next call on the
        // connection, which the borrow of `self` rules out.
        unsafe {
            sys::ambient_hbone_conn_pending_output(self.ptr, &mut data, &mut len);
            if data.is_null() || len == 0 {
                return &[];
            }
            std::slice::from_raw_parts(data, len)
        }
    }

    /// Drops `n` written output bytes.
    pub fn consume_output(&mut self, n: usize) {
        // SAFETY: live handle.
        unsafe { sys::ambient_hbone_conn_consume_output(self.ptr, n) }
    }

    /// Writes pending output to `w` until it is empty or `w` would block,
    /// and returns how many bytes were written. `Interrupted` is retried;
    /// `WouldBlock` ends the call with the count so far.
    pub fn write_to<W: io::Write>(&mut self, w: &mut W) -> io::Result<usize> {
        let mut total = 0;
        loop {
            let out = self.pending_output();
            if out.is_empty() {
                return Ok(total);
            }
            match w.write(out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.consume_output(n);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads once from `r` (up to 16 KiB) and feeds what came. Returns the
    /// byte count; 0 means end of file, which is passed on with
    /// [`Connection::receive_eof`]. `WouldBlock` and other I/O errors are
    /// returned as they are; a protocol failure is not an I/O error (it
    /// comes as [`Event::ConnectionClosed`]).
    pub fn read_from<R: io::Read>(&mut self, r: &mut R, now: u64) -> io::Result<usize> {
        let mut buf = [0u8; 16384];
        let n = loop {
            match r.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        if n == 0 {
            self.receive_eof(now);
        } else {
            // A failure closed the connection; it is reported as an event.
            let _ = self.receive(&buf[..n], now);
        }
        Ok(n)
    }

    /// When [`Connection::on_timeout`] should run (host nanoseconds), or
    /// `None` for never.
    pub fn next_deadline(&self) -> Option<u64> {
        // SAFETY: live handle.
        let d = unsafe { sys::ambient_hbone_conn_next_deadline(self.ptr) };
        (d != u64::MAX).then_some(d)
    }

    /// How long from `now` until the next deadline (zero when due), `None`
    /// for never: a poll/epoll timeout.
    pub fn timeout(&self, now: u64) -> Option<Duration> {
        self.next_deadline()
            .map(|d| Duration::from_nanos(d.saturating_sub(now)))
    }

    /// Runs what is due at `now` (handshake deadline, PING every 10 s, drop
    /// after 20 s without a PING reply).
    pub fn on_timeout(&mut self, now: u64) {
        // SAFETY: live handle.
        unsafe { sys::ambient_hbone_conn_on_timeout(self.ptr, now) }
    }

    /// The oldest pending event, or `None`. Call it after every other call
    /// until it returns `None`.
    pub fn poll_event(&mut self) -> Option<Event> {
        // SAFETY: ambient_hbone_event is plain data; all-zero is valid.
        let mut ev: sys::ambient_hbone_event = unsafe { std::mem::zeroed() };
        // SAFETY: live handle; the event's pointers are read before the next
        // call on the connection.
        if unsafe { sys::ambient_hbone_conn_poll_event(self.ptr, &mut ev) } != 1 {
            return None;
        }
        let stream = StreamId(ev.stream);
        Some(match ev.type_ {
            sys::AMBIENT_HBONE_EVENT_HANDSHAKE_DONE => Event::HandshakeDone,
            sys::AMBIENT_HBONE_EVENT_STREAM_REQUEST => {
                let mut headers = Vec::with_capacity(ev.n_headers);
                for i in 0..ev.n_headers {
                    let mut h = sys::ambient_hbone_header {
                        name: ptr::null(),
                        name_len: 0,
                        value: ptr::null(),
                        value_len: 0,
                    };
                    // SAFETY: live handle; the header is lent until the next poll.
                    if unsafe { sys::ambient_hbone_conn_request_header(self.ptr, i, &mut h) } != 0 {
                        break;
                    }
                    let value = if h.value.is_null() {
                        Vec::new()
                    } else {
                        // SAFETY: lent buffer of value_len bytes.
                        unsafe { std::slice::from_raw_parts(h.value.cast::<u8>(), h.value_len) }
                            .to_vec()
                    };
                    headers.push((lossy(h.name, h.name_len), value));
                }
                Event::StreamRequest {
                    stream,
                    authority: lossy(ev.authority, ev.authority_len),
                    headers,
                }
            }
            sys::AMBIENT_HBONE_EVENT_STREAM_RESPONSE => Event::StreamResponse {
                stream,
                http_status: u16::try_from(ev.http_status).unwrap_or(0),
            },
            sys::AMBIENT_HBONE_EVENT_STREAM_READABLE => Event::StreamReadable(stream),
            sys::AMBIENT_HBONE_EVENT_STREAM_WRITABLE => Event::StreamWritable(stream),
            sys::AMBIENT_HBONE_EVENT_STREAM_CLOSED => Event::StreamClosed {
                stream,
                result: result_of(ev.code, ev.message, ev.message_len),
            },
            sys::AMBIENT_HBONE_EVENT_GOAWAY => Event::GoAway,
            _ => Event::ConnectionClosed {
                result: result_of(ev.code, ev.message, ev.message_len),
            },
        })
    }

    /// The peer's SPIFFE ID ("" before the handshake).
    pub fn peer_identity(&self) -> String {
        // SAFETY: live handle; the string is copied at once.
        lent(unsafe { sys::ambient_hbone_conn_get0_peer_identity(self.ptr) })
    }

    /// True once the connection is over (close the transport when the
    /// pending output is also empty).
    pub fn is_closed(&self) -> bool {
        // SAFETY: live handle.
        unsafe { sys::ambient_hbone_conn_is_closed(self.ptr) == 1 }
    }

    /// True when a client connection is established, not going away and
    /// below its stream limit.
    pub fn can_open_stream(&self) -> bool {
        // SAFETY: live handle.
        unsafe { sys::ambient_hbone_conn_can_open_stream(self.ptr) == 1 }
    }

    /// Sends GOAWAY: no new streams; the connection closes after the last.
    pub fn drain(&mut self) {
        // SAFETY: live handle.
        unsafe { sys::ambient_hbone_conn_drain(self.ptr) }
    }

    /// Client: sends a CONNECT to `authority` ("ip:port", `"[v6]:port"` or
    /// "host:port") with extra `headers` (baggage, forwarded, ...). Errors:
    /// `AMBIENT_ERR_INVALID_ARGUMENT`, `AMBIENT_ERR_UNAVAILABLE` (not
    /// established, going away, at the stream limit),
    /// `AMBIENT_ERR_FAILED_PRECONDITION` (a server connection).
    pub fn open_stream(
        &mut self,
        authority: &str,
        headers: &[(&str, &[u8])],
    ) -> Result<StreamId, Error> {
        let a = cstring(authority)?;
        let raw: Vec<sys::ambient_hbone_header> = headers
            .iter()
            .map(|(n, v)| sys::ambient_hbone_header {
                name: n.as_ptr().cast(),
                name_len: n.len(),
                value: v.as_ptr().cast(),
                value_len: v.len(),
            })
            .collect();
        // SAFETY: live handle; strings and headers live for the call.
        let id = unsafe {
            sys::ambient_hbone_conn_open_stream(self.ptr, a.as_ptr(), raw.as_ptr(), raw.len())
        };
        if id <= 0 {
            return Err(code_error(if id == 0 {
                sys::AMBIENT_ERR_INTERNAL
            } else {
                id
            }));
        }
        Ok(StreamId(id))
    }

    /// Server: answers 200, the tunnel is open.
    pub fn accept_stream(&mut self, stream: StreamId) -> Result<(), Error> {
        // SAFETY: live handle.
        rc_result(unsafe { sys::ambient_hbone_conn_accept_stream(self.ptr, stream.0) }).map(|_| ())
    }

    /// Server: answers `http_status` (400-599) and ends the stream.
    pub fn reject_stream(&mut self, stream: StreamId, http_status: u16) -> Result<(), Error> {
        // SAFETY: live handle.
        rc_result(unsafe {
            sys::ambient_hbone_conn_reject_stream(self.ptr, stream.0, i32::from(http_status))
        })
        .map(|_| ())
    }

    /// Queues up to `data.len()` bytes for the peer and returns how many
    /// were taken (0 when the send buffer is full: wait for
    /// [`Event::StreamWritable`]).
    pub fn stream_write(&mut self, stream: StreamId, data: &[u8]) -> Result<usize, Error> {
        // SAFETY: live handle and buffer.
        rc_result(unsafe {
            sys::ambient_hbone_stream_write(self.ptr, stream.0, data.as_ptr(), data.len())
        })
    }

    /// Sends END_STREAM after the queued bytes (TCP EOF to the peer).
    pub fn stream_shutdown_write(&mut self, stream: StreamId) -> Result<(), Error> {
        // SAFETY: live handle.
        rc_result(unsafe { sys::ambient_hbone_stream_shutdown_write(self.ptr, stream.0) })
            .map(|_| ())
    }

    /// Copies received bytes into `buf` and returns the count (0: nothing
    /// now, or the end: see [`Connection::stream_at_eof`]). Reading
    /// releases flow-control window.
    pub fn stream_read(&mut self, stream: StreamId, buf: &mut [u8]) -> Result<usize, Error> {
        // SAFETY: live handle and buffer.
        rc_result(unsafe {
            sys::ambient_hbone_stream_read(self.ptr, stream.0, buf.as_mut_ptr(), buf.len())
        })
    }

    /// True when the peer ended the stream cleanly and everything was read.
    pub fn stream_at_eof(&self, stream: StreamId) -> bool {
        // SAFETY: live handle.
        unsafe { sys::ambient_hbone_stream_at_eof(self.ptr, stream.0) == 1 }
    }

    /// Ends the stream with RST_STREAM(CANCEL): it is
    /// `stream_reset_with(stream, ResetCode::Cancel)`.
    pub fn stream_reset(&mut self, stream: StreamId) -> Result<(), Error> {
        // SAFETY: live handle.
        rc_result(unsafe { sys::ambient_hbone_stream_reset(self.ptr, stream.0) }).map(|_| ())
    }

    /// Ends the stream with RST_STREAM(`code`): [`ResetCode::ConnectError`]
    /// when the TCP side the stream is relayed to was reset or broke (the
    /// peer's proxy then resets its own TCP side, RFC 9113 section 8.5, as
    /// ztunnel does), [`ResetCode::Cancel`] otherwise.
    pub fn stream_reset_with(&mut self, stream: StreamId, code: ResetCode) -> Result<(), Error> {
        // SAFETY: live handle; the code is one of the C enum's values.
        rc_result(unsafe { sys::ambient_hbone_stream_reset_with(self.ptr, stream.0, code.raw()) })
            .map(|_| ())
    }
}

/// The HTTP/2 error code a stream is reset with (`ambient_hbone_reset_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetCode {
    /// CANCEL (0x8): the stream is not needed any more.
    Cancel,
    /// CONNECT_ERROR (0xa): the TCP connection behind the CONNECT was reset
    /// or failed.
    ConnectError,
}

impl ResetCode {
    /// The wire code, as the C ABI takes it.
    pub fn raw(self) -> sys::ambient_hbone_reset_code {
        match self {
            ResetCode::Cancel => sys::AMBIENT_HBONE_RESET_CANCEL,
            ResetCode::ConnectError => sys::AMBIENT_HBONE_RESET_CONNECT_ERROR,
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: we own the connection.
        unsafe { sys::ambient_hbone_conn_free(self.ptr) }
    }
}
