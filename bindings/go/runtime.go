package ambient

/*
#include <stdlib.h>
#include <stdint.h>
#include "ambient/ambient.h"
ambient_error *ambientGoServerNew(ambient_runtime_loop *loop, const ambient_hbone_tls *tls,
                                  const char *listen, const char *const *allow, size_t n_allow,
                                  uintptr_t log_handle, ambient_hbone_server **out);
ambient_error *ambientGoClientNew(ambient_runtime_loop *loop, const ambient_hbone_tls *tls,
                                  uintptr_t log_handle, ambient_hbone_client **out);
int ambientGoClientTunnel(ambient_hbone_client *client, const char *via, const char *authority,
                          const char *const *expected, size_t n_expected, int fd,
                          uintptr_t done_handle);
ambient_error *ambientGoForwarderNew(ambient_runtime_loop *loop, ambient_hbone_client *client,
                                     const char *listen, const char *via, const char *authority,
                                     const char *const *expected, size_t n_expected,
                                     ambient_hbone_forwarder **out);
int ambientGoPost(ambient_runtime_loop *loop, uintptr_t task_handle);
*/
import "C"

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Loop is libambient's epoll event loop, run by a goroutine of its own
// (locked to an OS thread) from NewLoop until Close. HBONE servers, clients
// and forwarders are made on a loop and serve while it runs. Their methods
// may be called from any goroutine: each posts its work to the loop
// (ambient_runtime_loop_post) and waits for it to run there, as the C ABI
// requires (everything on the loop's thread).
//
// Log sinks run on the loop's goroutine: they should return quickly, and
// methods of the loop or of objects made on it called from them fail with
// FailedPrecondition (Close methods do nothing) instead of waiting
// forever; start a goroutine for such calls.
type Loop struct {
	ptr    *C.ambient_runtime_loop
	ptrMu  sync.RWMutex // posting holds it for reading; Close frees ptr under it
	tid    int32        // OS thread running the loop (set before NewLoop returns)
	closed bool         // set by Close's task; read by tasks (loop thread, then Close)
	done   chan struct{}
	// What is open on the loop (loop thread only), closed by Loop.Close.
	forwarders  map[*HBONEForwarder]struct{}
	clients     map[*HBONEClient]struct{}
	servers     map[*HBONEServer]struct{}
	nodeProxies map[*NodeProxy]struct{}
	caClients   map[*CAClient]struct{}
}

// NewLoop makes an event loop and starts running it. Errors: Internal
// (epoll or eventfd could not be created).
func NewLoop() (*Loop, error) {
	var out *C.ambient_runtime_loop
	if err := takeError(C.ambient_runtime_loop_new(&out)); err != nil {
		return nil, err
	}
	l := &Loop{ptr: out, done: make(chan struct{}),
		forwarders:  map[*HBONEForwarder]struct{}{},
		clients:     map[*HBONEClient]struct{}{},
		servers:     map[*HBONEServer]struct{}{},
		nodeProxies: map[*NodeProxy]struct{}{},
		caClients:   map[*CAClient]struct{}{}}
	started := make(chan struct{})
	go l.run(started)
	<-started
	// No finalizer: the running goroutine keeps the loop reachable; Close
	// ends it.
	return l, nil
}

func (l *Loop) run(started chan struct{}) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(l.done)
	defer atomic.StoreInt32(&l.tid, 0) // the thread may serve others after
	atomic.StoreInt32(&l.tid, int32(syscall.Gettid()))
	close(started)
	// Returns when Close's task stops it (a stop from inside a task is
	// never lost).
	C.ambient_runtime_loop_run(l.ptr)
}

// loopTask is one operation posted to the loop.
type loopTask struct {
	loop *Loop
	f    func()
	ran  bool
	done chan struct{}
}

//export ambientGoRunTask
func ambientGoRunTask(user unsafe.Pointer) {
	h := cgo.Handle(uintptr(user))
	t := h.Value().(*loopTask)
	h.Delete()
	defer close(t.done)
	// Tasks left when the loop is freed run inside ambient_runtime_loop_free
	// (on Close's goroutine, after the loop goroutine ended): they see
	// closed and do nothing.
	if t.loop.closed {
		return
	}
	t.ran = true
	t.f()
}

// do runs f on the loop's thread and waits for it. It fails, without
// running f, when the loop is closed or when called from a callback of the
// loop (waiting for the loop from its own thread would never end). The loop
// goroutine is locked to its OS thread and no other goroutine runs there,
// so a caller on that thread is a callback.
func (l *Loop) do(f func()) error {
	if int32(syscall.Gettid()) == atomic.LoadInt32(&l.tid) {
		return &Error{Code: FailedPrecondition, Message: "called from a callback of the runtime loop; use a goroutine"}
	}
	t := &loopTask{loop: l, f: f, done: make(chan struct{})}
	h := cgo.NewHandle(t)
	l.ptrMu.RLock()
	if l.ptr == nil {
		l.ptrMu.RUnlock()
		h.Delete()
		return closedLoop()
	}
	rc := C.ambientGoPost(l.ptr, C.uintptr_t(h))
	l.ptrMu.RUnlock()
	if rc < 0 {
		h.Delete()
		return &Error{Code: Code(rc), Message: "cannot post to the runtime loop"}
	}
	<-t.done
	if !t.ran {
		return closedLoop()
	}
	return nil
}

// Close closes what is still open on the loop (forwarders, clients,
// servers, node proxies, CA clients), stops the loop and frees it. Objects the program dropped
// without closing them stay open until then.
func (l *Loop) Close() {
	err := l.do(func() {
		for f := range l.forwarders {
			f.free()
		}
		for c := range l.clients {
			c.free()
		}
		for s := range l.servers {
			s.free()
		}
		for p := range l.nodeProxies {
			p.free()
		}
		for c := range l.caClients {
			c.free()
		}
		l.closed = true
		C.ambient_runtime_loop_stop(l.ptr)
	})
	if err != nil {
		return
	}
	<-l.done
	l.ptrMu.Lock()
	C.ambient_runtime_loop_free(l.ptr) // runs tasks posted meanwhile (they see closed)
	l.ptr = nil
	l.ptrMu.Unlock()
}

func closedLoop() error { return closedError("runtime loop") }

// HBONEServer accepts HBONE on a TCP address, authorizes each CONNECT,
// connects to its :authority (numeric ip:port, 10 s timeout), answers 200
// only then (401 not allowed, 503 unreachable) and relays bytes.
type HBONEServer struct {
	loop *Loop
	ptr  *C.ambient_hbone_server
	log  cgo.Handle
	addr string
}

// NewHBONEServer listens on listen ("ip:port" or "[v6]:port"; port 0 picks
// one) with the server-role tls. allow lists the client SPIFFE IDs that may
// open tunnels (empty: every client that passed TLS verification). log,
// when not nil, gets the access log ("connection complete ...", component
// "access") and other log lines, on the loop's goroutine. Errors:
// InvalidArgument (bad address, a client-role tls), AlreadyExists (address
// in use), PermissionDenied (privileged port).
func (l *Loop) NewHBONEServer(tls *HBONETLS, listen string, allow []string, log LogFunc) (*HBONEServer, error) {
	if tls == nil || tls.ptr == nil {
		return nil, closedError("HBONE TLS context")
	}
	if hasNUL(listen) || hasNUL(allow...) {
		return nil, &Error{Code: InvalidArgument, Message: "argument contains a NUL byte"}
	}
	s := &HBONEServer{loop: l}
	if log != nil {
		s.log = cgo.NewHandle(log)
	}
	cl := C.CString(listen)
	defer C.free(unsafe.Pointer(cl))
	ca := newCStrings(allow)
	defer ca.free()
	var err error
	if derr := l.do(func() {
		err = takeError(C.ambientGoServerNew(l.ptr, tls.ptr, cl, ca.arr, C.size_t(ca.n), C.uintptr_t(s.log), &s.ptr))
		if err == nil && s.ptr == nil {
			err = &Error{Code: ResourceExhausted, Message: "out of memory"}
		}
		if err == nil {
			s.addr = C.GoString(C.ambient_hbone_server_get0_address(s.ptr))
			l.servers[s] = struct{}{}
		}
	}); derr != nil {
		err = derr
	}
	runtime.KeepAlive(tls)
	if err != nil {
		if s.log != 0 {
			s.log.Delete()
		}
		return nil, err
	}
	return s, nil
}

// Addr returns the bound "ip:port".
func (s *HBONEServer) Addr() string { return s.addr }

// Metrics returns the istio_tcp_* counters in Prometheus text format.
func (s *HBONEServer) Metrics() string {
	var out string
	_ = s.loop.do(func() {
		if s.ptr == nil {
			return
		}
		out = copiedText(func(buf *C.char, size C.size_t) C.size_t {
			return C.ambient_hbone_server_metrics(s.ptr, buf, size)
		})
	})
	return out
}

// HBONELimit names one of the limits that keep an HBONE server in service
// under floods (ambient_hbone_limit in the C ABI).
type HBONELimit int

const (
	// Live connections (default 4096); at the cap new ones wait in the backlog.
	MaxConnections HBONELimit = C.AMBIENT_HBONE_MAX_CONNECTIONS
	// Connections still in their TLS handshake (default 256).
	MaxHandshakes HBONELimit = C.AMBIENT_HBONE_MAX_HANDSHAKES
	// Milliseconds after which a connection that sent nothing is closed
	// (default 3000; for connections accepted afterwards).
	SilentTimeoutMs HBONELimit = C.AMBIENT_HBONE_SILENT_TIMEOUT_MS
	// CONNECTs whose upstream connect is in flight, per connection (default
	// 100) and per client identity (default 1000); the excess gets 503.
	MaxPendingDialsPerConnection HBONELimit = C.AMBIENT_HBONE_MAX_PENDING_DIALS_PER_CONNECTION
	MaxPendingDialsPerIdentity   HBONELimit = C.AMBIENT_HBONE_MAX_PENDING_DIALS_PER_IDENTITY
)

// SetLimit sets one limit of the server to value (0 = no limit); the others
// keep theirs, and lowering a cap closes nothing. Errors: InvalidArgument (an
// unknown limit, a timeout over 2^31-1 ms), FailedPrecondition (closed).
func (s *HBONEServer) SetLimit(which HBONELimit, value uint64) error {
	var err error
	if e := s.loop.do(func() {
		if s.ptr == nil {
			err = &Error{Code: FailedPrecondition, Message: "the HBONE server is closed"}
			return
		}
		err = takeError(C.ambient_hbone_server_set_limit(s.ptr, C.ambient_hbone_limit(which),
			C.uint64_t(value)))
	}); e != nil {
		return e
	}
	return err
}

// Close closes the listener and aborts the server's connections.
func (s *HBONEServer) Close() { _ = s.loop.do(s.free) }

// free runs on the loop thread.
func (s *HBONEServer) free() {
	if s.ptr == nil {
		return
	}
	C.ambient_hbone_server_free(s.ptr)
	s.ptr = nil
	delete(s.loop.servers, s)
	if s.log != 0 {
		s.log.Delete() // the server is gone: no more calls
		s.log = 0
	}
}

// HBONEClient holds pooled HBONE connections (one per server address and
// expected identities) and makes tunnels over them.
type HBONEClient struct {
	loop *Loop
	ptr  *C.ambient_hbone_client
	log  cgo.Handle
	live map[*tunnelState]struct{} // tunnels not ended yet; loop thread only
}

// NewHBONEClient makes a pooled client with the client-role tls; log as for
// NewHBONEServer. Errors: InvalidArgument (a server-role tls).
func (l *Loop) NewHBONEClient(tls *HBONETLS, log LogFunc) (*HBONEClient, error) {
	if tls == nil || tls.ptr == nil {
		return nil, closedError("HBONE TLS context")
	}
	c := &HBONEClient{loop: l, live: map[*tunnelState]struct{}{}}
	if log != nil {
		c.log = cgo.NewHandle(log)
	}
	var err error
	if derr := l.do(func() {
		err = takeError(C.ambientGoClientNew(l.ptr, tls.ptr, C.uintptr_t(c.log), &c.ptr))
		if err == nil && c.ptr == nil {
			err = &Error{Code: ResourceExhausted, Message: "out of memory"}
		}
		if err == nil {
			l.clients[c] = struct{}{}
		}
	}); derr != nil {
		err = derr
	}
	runtime.KeepAlive(tls)
	if err != nil {
		if c.log != 0 {
			c.log.Delete()
		}
		return nil, err
	}
	return c, nil
}

// TunnelResult is how a tunnel ended.
type TunnelResult struct {
	HTTPStatus int   // the CONNECT response status, 0 if none came
	Err        error // nil for a clean end
}

// Tunnel is one HBONE stream, seen from Go as the net.Conn Conn: what is
// written to Conn goes to the upstream, what the upstream sends is read
// from it. Close Conn (or CloseWrite it) to end the stream.
type Tunnel struct {
	Conn  net.Conn
	state *tunnelState
}

type tunnelState struct {
	client *HBONEClient
	fd     int // libambient's end of the socket pair
	handle cgo.Handle
	result TunnelResult
	done   chan struct{}
}

// finish records the outcome, closes libambient's end and wakes Wait.
// Runs on the loop thread.
func (t *tunnelState) finish(r TunnelResult) {
	if t.fd < 0 {
		return
	}
	t.result = r
	_ = syscall.Close(t.fd)
	t.fd = -1
	delete(t.client.live, t)
	t.handle.Delete()
	close(t.done)
}

//export ambientGoTunnelDone
func ambientGoTunnelDone(user unsafe.Pointer, code C.int, httpStatus C.int, message *C.char) {
	t, ok := cgo.Handle(uintptr(user)).Value().(*tunnelState)
	if !ok {
		return
	}
	r := TunnelResult{HTTPStatus: int(httpStatus)}
	if code != 0 {
		r.Err = &Error{Code: Code(code), Message: C.GoString(message)}
	}
	t.finish(r)
}

// Wait blocks until the tunnel has ended and returns how.
func (t *Tunnel) Wait() TunnelResult {
	<-t.state.done
	return t.state.result
}

// Done is closed when the tunnel has ended.
func (t *Tunnel) Done() <-chan struct{} { return t.state.done }

// Dial opens a tunnel to authority ("ip:port" the server connects to) via
// the HBONE server at via ("ip:port"), whose identity must be one of
// expected (empty: any verified identity). The tunnel runs over a socket
// pair: Conn is the Go end. Errors: InvalidArgument for malformed
// arguments; everything later (TLS, identity, the CONNECT status) is in
// Wait's result.
func (c *HBONEClient) Dial(via, authority string, expected []string) (*Tunnel, error) {
	if _, err := ParseSocketAddress(via); err != nil {
		return nil, addressError("via", via, err, "a numeric IP:port is needed, e.g. 127.0.0.1:15008 or "+
			"[::1]:15008; host names are not resolved")
	}
	if err := CheckAuthority(authority); err != nil {
		return nil, addressError("authority", authority, err, "host:port with a port from 1 to 65535")
	}
	if hasNUL(expected...) {
		return nil, &Error{Code: InvalidArgument, Message: "argument contains a NUL byte"}
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &Error{Code: ResourceExhausted, Message: "socketpair: " + err.Error()}
	}
	f := os.NewFile(uintptr(fds[1]), "hbone-tunnel")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		syscall.Close(fds[0])
		return nil, &Error{Code: Internal, Message: "tunnel socket: " + err.Error()}
	}
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		syscall.Close(fds[0])
		conn.Close()
		return nil, &Error{Code: Internal, Message: "tunnel socket: " + err.Error()}
	}
	t := &tunnelState{client: c, fd: fds[0], done: make(chan struct{})}
	t.handle = cgo.NewHandle(t)
	cv, ca := C.CString(via), C.CString(authority)
	defer C.free(unsafe.Pointer(cv))
	defer C.free(unsafe.Pointer(ca))
	ce := newCStrings(expected)
	defer ce.free()
	var rcErr error
	if derr := c.loop.do(func() {
		if c.ptr == nil {
			rcErr = closedError("HBONE client")
			return
		}
		rc := C.ambientGoClientTunnel(c.ptr, cv, ca, ce.arr, C.size_t(ce.n), C.int(t.fd), C.uintptr_t(t.handle))
		if rc < 0 {
			rcErr = &Error{Code: Code(rc), Message: "cannot tunnel to " + authority + " via " + via +
				": " + tunnelHint(rc)}
			return
		}
		if t.fd >= 0 { // done may already have run
			c.live[t] = struct{}{}
		}
	}); derr != nil {
		rcErr = derr
	}
	if rcErr != nil {
		if t.fd >= 0 {
			syscall.Close(t.fd)
			t.handle.Delete()
		}
		conn.Close()
		return nil, rcErr
	}
	return &Tunnel{Conn: conn, state: t}, nil
}

// Close closes the forwarders using the client, then aborts the client's
// connections; tunnels still open end with Cancelled.
func (c *HBONEClient) Close() { _ = c.loop.do(c.free) }

// free runs on the loop thread.
func (c *HBONEClient) free() {
	if c.ptr == nil {
		return
	}
	for f := range c.loop.forwarders {
		if f.client == c {
			f.free()
		}
	}
	// Every tunnel not ended yet learns it through ambientGoTunnelDone with
	// Cancelled: inside the free (tunnels waiting for a connection) or from
	// the loop's next iteration (running ones; also when the loop is being
	// closed). Their handles and fds stay valid until then.
	C.ambient_hbone_client_free(c.ptr)
	c.ptr = nil
	delete(c.loop.clients, c)
	if c.log != 0 {
		c.log.Delete()
		c.log = 0
	}
}

// HBONEForwarder is a TCP listener whose every connection becomes one
// tunnel through an HBONEClient.
type HBONEForwarder struct {
	loop   *Loop
	client *HBONEClient
	ptr    *C.ambient_hbone_forwarder
	addr   string
}

// NewHBONEForwarder listens on listen and sends each accepted connection
// through client to authority via the server at via, expecting one of
// expected. Closing the client closes the forwarder. Errors:
// InvalidArgument, AlreadyExists, PermissionDenied.
func (l *Loop) NewHBONEForwarder(client *HBONEClient, listen, via, authority string, expected []string) (*HBONEForwarder, error) {
	if hasNUL(listen, via, authority) || hasNUL(expected...) {
		return nil, &Error{Code: InvalidArgument, Message: "argument contains a NUL byte"}
	}
	cl, cv, ca := C.CString(listen), C.CString(via), C.CString(authority)
	defer func() {
		for _, p := range []*C.char{cl, cv, ca} {
			C.free(unsafe.Pointer(p))
		}
	}()
	ce := newCStrings(expected)
	defer ce.free()
	f := &HBONEForwarder{loop: l, client: client}
	var err error
	if derr := l.do(func() {
		if client == nil || client.ptr == nil {
			err = closedError("HBONE client")
			return
		}
		err = takeError(C.ambientGoForwarderNew(l.ptr, client.ptr, cl, cv, ca, ce.arr, C.size_t(ce.n), &f.ptr))
		if err == nil && f.ptr == nil {
			err = &Error{Code: ResourceExhausted, Message: "out of memory"}
		}
		if err == nil {
			f.addr = C.GoString(C.ambient_hbone_forwarder_get0_address(f.ptr))
			l.forwarders[f] = struct{}{}
		}
	}); derr != nil {
		err = derr
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Addr returns the bound "ip:port".
func (f *HBONEForwarder) Addr() string { return f.addr }

// Close closes the listener (tunnels already made keep running).
func (f *HBONEForwarder) Close() { _ = f.loop.do(f.free) }

// free runs on the loop thread.
func (f *HBONEForwarder) free() {
	if f.ptr == nil {
		return
	}
	C.ambient_hbone_forwarder_free(f.ptr)
	f.ptr = nil
	delete(f.loop.forwarders, f)
}

// tunnelHint names a code a refused Dial returned (its arguments were
// checked before, see addressError).
func tunnelHint(rc C.int) string { return C.GoString(C.ambient_strerror(rc)) }

// addressError is the library's refusal of Dial's address argument `what`
// (given as `value`), with what to write instead.
func addressError(what, value string, err error, want string) error {
	e, ok := err.(*Error)
	if !ok {
		return err
	}
	return &Error{Code: e.Code, Detail: e.Detail, Message: fmt.Sprintf("%s %q: %s (%s)", what, value, e.Message, want)}
}
