package ambient

/*
#include <stdlib.h>
#include "ambient/ambient.h"

ambient_error *ambientGoTlsNew(ambient_hbone_role role, const char *cert, size_t cert_len,
                               const char *key, size_t key_len, const char *bundle,
                               size_t bundle_len, ambient_hbone_tls **out);
*/
import "C"

import (
	"io"
	"runtime"
	"time"
	"unsafe"
)

// HBONERole says which end of HBONE an object is for.
type HBONERole int

// The roles.
const (
	HBONERoleClient HBONERole = C.AMBIENT_HBONE_CLIENT
	HBONERoleServer HBONERole = C.AMBIENT_HBONE_SERVER
)

// HBONETLS is the TLS side of HBONE for one role: our credentials, the trust
// bundle of our trust domain and ambient's SPIFFE verifier on an
// SSL_CTX. Safe for concurrent use; connections, servers and clients made
// from it keep what they need, so it may be closed before them.
type HBONETLS struct {
	ptr  *C.ambient_hbone_tls
	role HBONERole
}

func newHBONETLS(p *C.ambient_hbone_tls, role HBONERole) *HBONETLS {
	t := &HBONETLS{ptr: p, role: role}
	runtime.SetFinalizer(t, (*HBONETLS).Close)
	return t
}

// cbytes returns a C view of b for the duration of a call (never NULL, so
// empty input reaches the C side as empty rather than missing).
func cbytes(b []byte) (*C.char, C.size_t) {
	if len(b) == 0 {
		b = []byte{0}
		return (*C.char)(unsafe.Pointer(&b[0])), 0
	}
	return (*C.char)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}

// NewHBONETLS makes the TLS side of role from our certificate chain (PEM,
// leaf first, with one SPIFFE ID URI SAN), its private key (PEM) and the
// trust bundle of our trust domain (PEM, or SPIFFE bundle JSON). Errors:
// InvalidArgument (unparsable PEM/JSON, key not matching, leaf without
// SPIFFE ID), FailedPrecondition (the TLS library bound is not libambient's).
func NewHBONETLS(role HBONERole, certPEM, keyPEM, bundle []byte) (*HBONETLS, error) {
	if role != HBONERoleClient && role != HBONERoleServer {
		return nil, &Error{Code: InvalidArgument, Message: "unknown HBONE role"}
	}
	c, cl := cbytes(certPEM)
	k, kl := cbytes(keyPEM)
	b, bl := cbytes(bundle)
	var out *C.ambient_hbone_tls
	if err := takeError(C.ambientGoTlsNew(C.ambient_hbone_role(role), c, cl, k, kl, b, bl, &out)); err != nil {
		return nil, err
	}
	if out == nil {
		return nil, &Error{Code: ResourceExhausted, Message: "out of memory"}
	}
	return newHBONETLS(out, role), nil
}

// NewHBONETLSFromFiles is NewHBONETLS reading three files; an unreadable
// file is NotFound or PermissionDenied naming the path.
func NewHBONETLSFromFiles(role HBONERole, certPath, keyPath, bundlePath string) (*HBONETLS, error) {
	if role != HBONERoleClient && role != HBONERoleServer {
		return nil, &Error{Code: InvalidArgument, Message: "unknown HBONE role"}
	}
	c, k, b := C.CString(certPath), C.CString(keyPath), C.CString(bundlePath)
	defer func() {
		for _, p := range []*C.char{c, k, b} {
			C.free(unsafe.Pointer(p))
		}
	}()
	var out *C.ambient_hbone_tls
	if err := takeError(C.ambient_hbone_tls_new_from_files(C.ambient_hbone_role(role), c, k, b, &out)); err != nil {
		return nil, err
	}
	return newHBONETLS(out, role), nil
}

// Role returns the role the context was made for.
func (t *HBONETLS) Role() HBONERole { return t.role }

// Identity returns our own SPIFFE ID.
func (t *HBONETLS) Identity() string {
	if t.ptr == nil {
		return ""
	}
	s := C.GoString(C.ambient_hbone_tls_get0_identity(t.ptr))
	runtime.KeepAlive(t)
	return s
}

// Close releases the context; what was made from it keeps working.
func (t *HBONETLS) Close() {
	if t.ptr != nil {
		C.ambient_hbone_tls_free(t.ptr)
		t.ptr = nil
	}
	runtime.SetFinalizer(t, nil)
}

// cStrings is a C array of C strings, freed with free.
type cStrings struct {
	arr *(*C.char)
	n   int
}

func newCStrings(ss []string) cStrings {
	if len(ss) == 0 {
		return cStrings{}
	}
	arr := (*(*C.char))(C.malloc(C.size_t(len(ss)) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	view := unsafe.Slice(arr, len(ss))
	for i, s := range ss {
		view[i] = C.CString(s)
	}
	return cStrings{arr: arr, n: len(ss)}
}

func (c cStrings) free() {
	if c.arr == nil {
		return
	}
	for _, p := range unsafe.Slice(c.arr, c.n) {
		C.free(unsafe.Pointer(p))
	}
	C.free(unsafe.Pointer(c.arr))
}

func hasNUL(ss ...string) bool {
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			if s[i] == 0 {
				return true
			}
		}
	}
	return false
}

// HBONEEventType names what happened on an HBONEConn.
type HBONEEventType int

// The event types.
const (
	HBONEHandshakeDone    HBONEEventType = C.AMBIENT_HBONE_EVENT_HANDSHAKE_DONE
	HBONEStreamRequest    HBONEEventType = C.AMBIENT_HBONE_EVENT_STREAM_REQUEST
	HBONEStreamResponse   HBONEEventType = C.AMBIENT_HBONE_EVENT_STREAM_RESPONSE
	HBONEStreamReadable   HBONEEventType = C.AMBIENT_HBONE_EVENT_STREAM_READABLE
	HBONEStreamWritable   HBONEEventType = C.AMBIENT_HBONE_EVENT_STREAM_WRITABLE
	HBONEStreamClosed     HBONEEventType = C.AMBIENT_HBONE_EVENT_STREAM_CLOSED
	HBONEGoAway           HBONEEventType = C.AMBIENT_HBONE_EVENT_GOAWAY
	HBONEConnectionClosed HBONEEventType = C.AMBIENT_HBONE_EVENT_CONNECTION_CLOSED
)

// HBONEHeader is one request header (name lowercase).
type HBONEHeader struct {
	Name  string
	Value []byte
}

// HBONEEvent is one event, copied out of the connection.
type HBONEEvent struct {
	Type       HBONEEventType
	Stream     int32
	HTTPStatus int           // StreamResponse
	Err        error         // StreamClosed, ConnectionClosed: nil for a clean end
	Authority  string        // StreamRequest
	Headers    []HBONEHeader // StreamRequest: the other request headers
}

// HBONEConn is one HBONE connection that never touches sockets, goroutines
// or clocks: feed it the bytes read from the transport (Receive), write out
// what it produces (PendingOutput + ConsumeOutput, or WriteTo), call
// OnTimeout when NextDeadline has passed, and PollEvent after every call
// until it returns false. Times are monotonic nanoseconds of any origin
// (NowNanos gives one). Not safe for concurrent use.
type HBONEConn struct {
	ptr *C.ambient_hbone_conn
}

var monoOrigin = time.Now()

// NowNanos returns monotonic nanoseconds since the package was loaded, a
// clock for HBONEConn's time arguments.
func NowNanos() uint64 { return uint64(time.Since(monoOrigin)) }

// NewHBONEConn makes a connection for tls's role. A client's server must
// present one of expectedIDs (empty: any identity the bundle verifies).
// Call Start next. Errors: InvalidArgument (a malformed expected identity).
func NewHBONEConn(tls *HBONETLS, expectedIDs []string) (*HBONEConn, error) {
	if tls == nil || tls.ptr == nil {
		return nil, closedError("HBONE TLS context")
	}
	if hasNUL(expectedIDs...) {
		return nil, &Error{Code: InvalidArgument, Message: "expected identity contains a NUL byte"}
	}
	ids := newCStrings(expectedIDs)
	defer ids.free()
	var out *C.ambient_hbone_conn
	err := takeError(C.ambient_hbone_conn_new(tls.ptr, ids.arr, C.size_t(ids.n), &out))
	runtime.KeepAlive(tls)
	if err != nil {
		return nil, err
	}
	c := &HBONEConn{ptr: out}
	runtime.SetFinalizer(c, (*HBONEConn).Close)
	return c, nil
}

// Close releases the connection and its streams without telling the peer
// (Drain first for a graceful end).
func (c *HBONEConn) Close() {
	if c.ptr != nil {
		C.ambient_hbone_conn_free(c.ptr)
		c.ptr = nil
	}
	runtime.SetFinalizer(c, nil)
}

// Start starts the connection: a client produces its ClientHello; both
// sides arm the 10 s handshake deadline.
func (c *HBONEConn) Start(now uint64) {
	if c.ptr != nil {
		C.ambient_hbone_conn_start(c.ptr, C.uint64_t(now))
	}
	runtime.KeepAlive(c)
}

// Receive processes bytes read from the transport. An error is the failure
// that closed the connection (Unauthenticated/PermissionDenied for TLS and
// identity, InvalidArgument for malformed HTTP/2, DataLoss for broken TLS
// records); the pending output is still worth sending.
func (c *HBONEConn) Receive(data []byte, now uint64) error {
	if c.ptr == nil {
		return closedError("HBONE connection")
	}
	var p *C.uint8_t
	if len(data) > 0 {
		p = (*C.uint8_t)(unsafe.Pointer(&data[0]))
	}
	rc := C.ambient_hbone_conn_receive(c.ptr, p, C.size_t(len(data)), C.uint64_t(now))
	runtime.KeepAlive(c)
	return codeError(rc)
}

// ReceiveEOF says the transport delivers no more bytes.
func (c *HBONEConn) ReceiveEOF(now uint64) {
	if c.ptr != nil {
		C.ambient_hbone_conn_receive_eof(c.ptr, C.uint64_t(now))
	}
	runtime.KeepAlive(c)
}

// PendingOutput returns a copy of the bytes waiting to be written to the
// transport; after writing n of them call ConsumeOutput(n).
func (c *HBONEConn) PendingOutput() []byte {
	if c.ptr == nil {
		return nil
	}
	var p *C.uint8_t
	var n C.size_t
	C.ambient_hbone_conn_pending_output(c.ptr, &p, &n)
	var out []byte
	if n > 0 {
		out = C.GoBytes(unsafe.Pointer(p), C.int(n))
	}
	runtime.KeepAlive(c)
	return out
}

// ConsumeOutput drops n written output bytes.
func (c *HBONEConn) ConsumeOutput(n int) {
	if c.ptr != nil && n > 0 {
		C.ambient_hbone_conn_consume_output(c.ptr, C.size_t(n))
	}
	runtime.KeepAlive(c)
}

// WriteTo writes the pending output to w and consumes what was written.
func (c *HBONEConn) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		out := c.PendingOutput()
		if len(out) == 0 {
			return total, nil
		}
		n, err := w.Write(out)
		c.ConsumeOutput(n)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

// NextDeadline returns when OnTimeout should be called (host nanoseconds),
// and false for never.
func (c *HBONEConn) NextDeadline() (uint64, bool) {
	if c.ptr == nil {
		return 0, false
	}
	d := uint64(C.ambient_hbone_conn_next_deadline(c.ptr))
	runtime.KeepAlive(c)
	return d, d != ^uint64(0)
}

// OnTimeout runs what is due at now (handshake deadline, PING every 10 s,
// drop after 20 s without a PING reply).
func (c *HBONEConn) OnTimeout(now uint64) {
	if c.ptr != nil {
		C.ambient_hbone_conn_on_timeout(c.ptr, C.uint64_t(now))
	}
	runtime.KeepAlive(c)
}

// PollEvent returns the oldest pending event, and false when there is none.
func (c *HBONEConn) PollEvent() (HBONEEvent, bool) {
	if c.ptr == nil {
		return HBONEEvent{}, false
	}
	defer runtime.KeepAlive(c)
	var ev C.ambient_hbone_event
	if C.ambient_hbone_conn_poll_event(c.ptr, &ev) != 1 {
		return HBONEEvent{}, false
	}
	out := HBONEEvent{Type: HBONEEventType(ev._type), Stream: int32(ev.stream), HTTPStatus: int(ev.http_status)}
	if ev.code != 0 {
		out.Err = &Error{Code: Code(ev.code), Message: C.GoStringN(ev.message, C.int(ev.message_len))}
	}
	if out.Type == HBONEStreamRequest {
		out.Authority = C.GoStringN(ev.authority, C.int(ev.authority_len))
		for i := C.size_t(0); i < ev.n_headers; i++ {
			var h C.ambient_hbone_header
			if C.ambient_hbone_conn_request_header(c.ptr, i, &h) != 0 {
				break
			}
			out.Headers = append(out.Headers, HBONEHeader{
				Name:  C.GoStringN(h.name, C.int(h.name_len)),
				Value: C.GoBytes(unsafe.Pointer(h.value), C.int(h.value_len)),
			})
		}
	}
	return out, true
}

// PeerIdentity returns the peer's SPIFFE ID ("" before the handshake).
func (c *HBONEConn) PeerIdentity() string {
	if c.ptr == nil {
		return ""
	}
	s := C.GoString(C.ambient_hbone_conn_get0_peer_identity(c.ptr))
	runtime.KeepAlive(c)
	return s
}

// IsClosed reports whether the connection is over (close the transport when
// the pending output is also empty). A closed handle counts as over.
func (c *HBONEConn) IsClosed() bool {
	if c.ptr == nil {
		return true
	}
	r := C.ambient_hbone_conn_is_closed(c.ptr) == 1
	runtime.KeepAlive(c)
	return r
}

// CanOpenStream reports whether a client connection is established, not
// going away and below its stream limit.
func (c *HBONEConn) CanOpenStream() bool {
	if c.ptr == nil {
		return false
	}
	r := C.ambient_hbone_conn_can_open_stream(c.ptr) == 1
	runtime.KeepAlive(c)
	return r
}

// Drain sends GOAWAY: no new streams; the connection closes after the last.
func (c *HBONEConn) Drain() {
	if c.ptr != nil {
		C.ambient_hbone_conn_drain(c.ptr)
	}
	runtime.KeepAlive(c)
}

// OpenStream (client) sends a CONNECT to authority ("ip:port", "[v6]:port"
// or "host:port") with extra headers and returns the stream id. Errors:
// InvalidArgument, Unavailable (not established, going away, at the stream
// limit), FailedPrecondition (a server connection).
func (c *HBONEConn) OpenStream(authority string, headers []HBONEHeader) (int32, error) {
	if c.ptr == nil {
		return 0, closedError("HBONE connection")
	}
	if hasNUL(authority) {
		return 0, &Error{Code: InvalidArgument, Message: "authority contains a NUL byte"}
	}
	a := C.CString(authority)
	defer C.free(unsafe.Pointer(a))
	// Header bytes are copied into C memory: the array handed to C must not
	// hold Go pointers.
	var hs *C.ambient_hbone_header
	if len(headers) > 0 {
		hs = (*C.ambient_hbone_header)(C.calloc(C.size_t(len(headers)), C.size_t(unsafe.Sizeof(C.ambient_hbone_header{}))))
		view := unsafe.Slice(hs, len(headers))
		for i, h := range headers {
			view[i].name = (*C.char)(C.CBytes([]byte(h.Name)))
			view[i].name_len = C.size_t(len(h.Name))
			view[i].value = (*C.char)(C.CBytes(h.Value))
			view[i].value_len = C.size_t(len(h.Value))
		}
		defer func() {
			for _, h := range view {
				C.free(unsafe.Pointer(h.name))
				C.free(unsafe.Pointer(h.value))
			}
			C.free(unsafe.Pointer(hs))
		}()
	}
	id := C.ambient_hbone_conn_open_stream(c.ptr, a, hs, C.size_t(len(headers)))
	runtime.KeepAlive(c)
	if id < 0 {
		return 0, codeError(C.int(id))
	}
	return int32(id), nil
}

// AcceptStream (server) answers 200: the tunnel is open.
func (c *HBONEConn) AcceptStream(stream int32) error {
	if c.ptr == nil {
		return closedError("HBONE connection")
	}
	rc := C.ambient_hbone_conn_accept_stream(c.ptr, C.int32_t(stream))
	runtime.KeepAlive(c)
	return codeError(rc)
}

// RejectStream (server) answers httpStatus (400-599) and ends the stream.
func (c *HBONEConn) RejectStream(stream int32, httpStatus int) error {
	if c.ptr == nil {
		return closedError("HBONE connection")
	}
	rc := C.ambient_hbone_conn_reject_stream(c.ptr, C.int32_t(stream), C.int(httpStatus))
	runtime.KeepAlive(c)
	return codeError(rc)
}

// StreamWrite queues bytes for the peer and returns how many were taken (0
// when the send buffer is full: wait for HBONEStreamWritable).
func (c *HBONEConn) StreamWrite(stream int32, data []byte) (int, error) {
	if c.ptr == nil {
		return 0, closedError("HBONE connection")
	}
	var p *C.uint8_t
	if len(data) > 0 {
		p = (*C.uint8_t)(unsafe.Pointer(&data[0]))
	}
	rc := C.ambient_hbone_stream_write(c.ptr, C.int32_t(stream), p, C.size_t(len(data)))
	runtime.KeepAlive(c)
	if rc < 0 {
		return 0, codeError(rc)
	}
	return int(rc), nil
}

// StreamShutdownWrite sends END_STREAM after the queued bytes.
func (c *HBONEConn) StreamShutdownWrite(stream int32) error {
	if c.ptr == nil {
		return closedError("HBONE connection")
	}
	rc := C.ambient_hbone_stream_shutdown_write(c.ptr, C.int32_t(stream))
	runtime.KeepAlive(c)
	return codeError(rc)
}

// StreamRead copies received bytes into buf and returns the count (0:
// nothing now, or the end: see StreamAtEOF).
func (c *HBONEConn) StreamRead(stream int32, buf []byte) (int, error) {
	if c.ptr == nil {
		return 0, closedError("HBONE connection")
	}
	if len(buf) == 0 {
		return 0, nil
	}
	rc := C.ambient_hbone_stream_read(c.ptr, C.int32_t(stream), (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	runtime.KeepAlive(c)
	if rc < 0 {
		return 0, codeError(rc)
	}
	return int(rc), nil
}

// StreamAtEOF reports whether the peer ended the stream cleanly and
// everything was read.
func (c *HBONEConn) StreamAtEOF(stream int32) bool {
	if c.ptr == nil {
		return false
	}
	r := C.ambient_hbone_stream_at_eof(c.ptr, C.int32_t(stream)) == 1
	runtime.KeepAlive(c)
	return r
}

// StreamReset ends the stream with RST_STREAM(CANCEL): it is
// StreamResetWith(stream, ResetCancel).
func (c *HBONEConn) StreamReset(stream int32) error {
	if c.ptr == nil {
		return closedError("HBONE connection")
	}
	rc := C.ambient_hbone_stream_reset(c.ptr, C.int32_t(stream))
	runtime.KeepAlive(c)
	return codeError(rc)
}

// ResetCode is the HTTP/2 error code a stream is reset with
// (ambient_hbone_reset_code; the values are the wire codes).
type ResetCode int

const (
	// ResetCancel: the stream is not needed any more.
	ResetCancel ResetCode = C.AMBIENT_HBONE_RESET_CANCEL
	// ResetConnectError: the TCP connection behind the CONNECT was reset or
	// failed; the peer's proxy resets its own TCP side (RFC 9113 section
	// 8.5), as with ztunnel.
	ResetConnectError ResetCode = C.AMBIENT_HBONE_RESET_CONNECT_ERROR
)

// StreamResetWith ends the stream with RST_STREAM(code). Use
// ResetConnectError when the TCP side the stream is relayed to was reset or
// broke, ResetCancel otherwise. Errors: InvalidArgument for a code that is
// neither, NotFound for an unknown stream.
func (c *HBONEConn) StreamResetWith(stream int32, code ResetCode) error {
	if c.ptr == nil {
		return closedError("HBONE connection")
	}
	rc := C.ambient_hbone_stream_reset_with(c.ptr, C.int32_t(stream), C.ambient_hbone_reset_code(code))
	runtime.KeepAlive(c)
	return codeError(rc)
}
