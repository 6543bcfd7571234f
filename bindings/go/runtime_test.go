package ambient

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	webID = "spiffe://example.org/ns/default/sa/web"
	dbID  = "spiffe://example.org/ns/default/sa/db"
)

// hboneTLS makes a server context for dbID and a client context for webID,
// both of trust domain example.org.
func hboneTLS(t *testing.T) (server, client *HBONETLS) {
	t.Helper()
	now := time.Now()
	ca := issue(t, nil, "spiffe://example.org", true, now.Add(-time.Hour), now.Add(24*time.Hour))
	db := issue(t, ca, dbID, false, now.Add(-time.Hour), now.Add(time.Hour))
	web := issue(t, ca, webID, false, now.Add(-time.Hour), now.Add(time.Hour))
	server, err := NewHBONETLS(HBONERoleServer, db.pem, db.keyPEM, ca.pem)
	if err != nil {
		t.Fatal(err)
	}
	client, err = NewHBONETLS(HBONERoleClient, web.pem, web.keyPEM, ca.pem)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	if server.Identity() != dbID || client.Identity() != webID {
		t.Fatalf("identities %q %q", server.Identity(), client.Identity())
	}
	return server, client
}

// echoServer listens on loopback and echoes every connection; it counts
// the connections it accepted.
func echoServer(t *testing.T) (addr string, accepted *int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			atomic.AddInt32(&n, 1)
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return l.Addr().String(), &n
}

// logLines collects log lines as "component: message".
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) sink(level LogLevel, component, message string) {
	l.mu.Lock()
	l.lines = append(l.lines, component+": "+message)
	l.mu.Unlock()
}

// waitFor returns the first line containing every part, waiting up to 5 s.
func (l *logLines) waitFor(t *testing.T, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for _, line := range l.lines {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				l.mu.Unlock()
				return line
			}
		}
		l.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Fatalf("no log line with %q in %q", parts, l.lines)
	return ""
}

// roundTrip writes msg to c, half-closes it and reads everything back.
func roundTrip(t *testing.T, c net.Conn, msg []byte) []byte {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	return got
}

func TestHBONETunnelThroughServer(t *testing.T) {
	serverTLS, clientTLS := hboneTLS(t)
	echo, accepted := echoServer(t)
	loop, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	var access logLines
	srv, err := loop.NewHBONEServer(serverTLS, "127.0.0.1:0", []string{webID}, access.sink)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasPrefix(srv.Addr(), "127.0.0.1:") || strings.HasSuffix(srv.Addr(), ":0") {
		t.Fatalf("server address %q", srv.Addr())
	}
	cli, err := loop.NewHBONEClient(clientTLS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	tun, err := cli.Dial(srv.Addr(), echo, []string{dbID})
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("hbone from go "), 20000) // ~280 KB, several windows
	got := roundTrip(t, tun.Conn, msg)
	tun.Conn.Close()
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo returned %d bytes, want %d", len(got), len(msg))
	}
	res := tun.Wait()
	if res.Err != nil || res.HTTPStatus != 200 {
		t.Fatalf("tunnel ended with %d %v", res.HTTPStatus, res.Err)
	}
	if atomic.LoadInt32(accepted) != 1 {
		t.Fatalf("upstream accepted %d connections", *accepted)
	}
	line := access.waitFor(t, "access: ", "connection complete", webID)
	for _, want := range []string{`direction="inbound"`, "bytes_sent=280000", "bytes_recv=280000", "dst.hbone_addr=" + echo} {
		if !strings.Contains(line, want) {
			t.Errorf("access log line lacks %s: %q", want, line)
		}
	}
	if m := srv.Metrics(); !strings.Contains(m, "istio_tcp") {
		t.Errorf("metrics: %q", m)
	}
}

func TestHBONEServerAllowListAnswers401(t *testing.T) {
	serverTLS, clientTLS := hboneTLS(t)
	echo, accepted := echoServer(t)
	loop, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	var access logLines
	// Only another workload may open tunnels.
	srv, err := loop.NewHBONEServer(serverTLS, "127.0.0.1:0", []string{"spiffe://example.org/ns/default/sa/other"}, access.sink)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := loop.NewHBONEClient(clientTLS, nil)
	if err != nil {
		t.Fatal(err)
	}
	tun, err := cli.Dial(srv.Addr(), echo, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = tun.Conn.SetDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(tun.Conn); err != nil || len(b) != 0 {
		t.Fatalf("denied tunnel gave %q %v", b, err)
	}
	tun.Conn.Close()
	res := tun.Wait()
	if res.HTTPStatus != 401 || res.Err == nil {
		t.Fatalf("tunnel ended with %d %v, want 401 and an error", res.HTTPStatus, res.Err)
	}
	if atomic.LoadInt32(accepted) != 0 {
		t.Fatal("the upstream was reached although the client is not allowed")
	}
	access.waitFor(t, "access: ", webID)
	// Objects left open are closed by Loop.Close (deferred).
}

func TestHBONEForwarder(t *testing.T) {
	serverTLS, clientTLS := hboneTLS(t)
	echo, _ := echoServer(t)
	loop, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	srv, err := loop.NewHBONEServer(serverTLS, "127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var clientLog logLines
	cli, err := loop.NewHBONEClient(clientTLS, clientLog.sink)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	fwd, err := loop.NewHBONEForwarder(cli, "127.0.0.1:0", srv.Addr(), echo, []string{dbID})
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	for i := 0; i < 3; i++ { // pooled: later tunnels reuse the connection
		c, err := net.Dial("tcp", fwd.Addr())
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("through the forwarder")
		if got := roundTrip(t, c, msg); !bytes.Equal(got, msg) {
			t.Fatalf("got %q", got)
		}
		c.Close()
	}
	clientLog.waitFor(t, "access: ", "connection complete", dbID)
}

func TestHBONEClientRefusesUnexpectedServer(t *testing.T) {
	serverTLS, clientTLS := hboneTLS(t)
	echo, accepted := echoServer(t)
	loop, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	srv, err := loop.NewHBONEServer(serverTLS, "127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := loop.NewHBONEClient(clientTLS, nil)
	if err != nil {
		t.Fatal(err)
	}
	tun, err := cli.Dial(srv.Addr(), echo, []string{"spiffe://example.org/ns/default/sa/other"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tun.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("tunnel to an unexpected server did not end")
	}
	res := tun.Wait()
	var e *Error
	if !errors.As(res.Err, &e) || (e.Code != PermissionDenied && e.Code != Unauthenticated) || res.HTTPStatus != 0 {
		t.Fatalf("tunnel ended with %d %v", res.HTTPStatus, res.Err)
	}
	if atomic.LoadInt32(accepted) != 0 {
		t.Fatal("the upstream was reached")
	}
	tun.Conn.Close()
}

func TestRuntimeBadArguments(t *testing.T) {
	serverTLS, clientTLS := hboneTLS(t)
	loop, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	_, err = loop.NewHBONEServer(clientTLS, "127.0.0.1:0", nil, nil)
	errCode(t, err, InvalidArgument, 0)
	_, err = loop.NewHBONEServer(serverTLS, "not an address", nil, nil)
	errCode(t, err, InvalidArgument, 0)
	// An allow entry that is not a full SPIFFE ID is refused, with the reason.
	for _, bad := range []string{"cluster.local/ns/default/sa/demo", "spiffe://td/ns/a/sa/b/"} {
		_, err = loop.NewHBONEServer(serverTLS, "127.0.0.1:0", []string{bad}, nil)
		errCodeOnly(t, err, InvalidArgument)
		if !strings.Contains(err.Error(), "allow[0]") {
			t.Errorf("allow %q: error %q does not name the entry", bad, err)
		}
	}
	srv, err := loop.NewHBONEServer(serverTLS, "127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = loop.NewHBONEServer(serverTLS, srv.Addr(), nil, nil)
	errCode(t, err, AlreadyExists, 0)
	_, err = loop.NewHBONEClient(serverTLS, nil)
	errCode(t, err, InvalidArgument, 0)
	cli, err := loop.NewHBONEClient(clientTLS, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A malformed via address or authority is refused by Dial itself.
	_, err = cli.Dial("nowhere", "127.0.0.1:1", nil)
	errCode(t, err, InvalidArgument, 0)
	// A host name says what is needed instead.
	_, err = cli.Dial("localhost:15008", "127.0.0.1:1", nil)
	errCode(t, err, InvalidArgument, 0)
	if !strings.Contains(err.Error(), "numeric IP:port") {
		t.Errorf("Dial with a host name: %q does not say a numeric IP:port is needed", err)
	}
	_, err = cli.Dial(srv.Addr(), "not an authority", nil)
	errCode(t, err, InvalidArgument, 0)
	_, err = NewHBONETLS(HBONERoleServer, []byte("junk"), []byte("junk"), []byte("junk"))
	errCode(t, err, InvalidArgument, 0)
	_, err = NewHBONETLSFromFiles(HBONERoleServer, "/nonexistent/c.pem", "/nonexistent/k.pem", "/nonexistent/b.pem")
	errCode(t, err, NotFound, 0)
	cli.Close()
	if _, err := cli.Dial(srv.Addr(), "127.0.0.1:1", nil); err == nil {
		t.Fatal("Dial on a closed client succeeded")
	}
	loop.Close()
	if _, err := loop.NewHBONEClient(clientTLS, nil); err == nil {
		t.Fatal("NewHBONEClient on a closed loop succeeded")
	}
}

func TestRuntimeCallsFromACallbackFailInsteadOfHanging(t *testing.T) {
	serverTLS, clientTLS := hboneTLS(t)
	echo, _ := echoServer(t)
	loop, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	fromSink := make(chan error, 1)
	srv, err := loop.NewHBONEServer(serverTLS, "127.0.0.1:0", nil, func(level LogLevel, component, message string) {
		_, err := loop.NewHBONEClient(clientTLS, nil) // would wait for itself
		select {
		case fromSink <- err:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := loop.NewHBONEClient(clientTLS, nil)
	if err != nil {
		t.Fatal(err)
	}
	tun, err := cli.Dial(srv.Addr(), echo, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, tun.Conn, []byte("x")); string(got) != "x" {
		t.Fatalf("got %q", got)
	}
	tun.Conn.Close()
	select {
	case err := <-fromSink:
		errCode(t, err, FailedPrecondition, 0)
	case <-time.After(10 * time.Second):
		t.Fatal("the log sink never ran (or hung)")
	}
	// The loop still serves.
	if m := srv.Metrics(); !strings.Contains(m, "istio_tcp") {
		t.Fatalf("metrics after the refused call: %q", m)
	}
}

// A tunnel that carries bytes when its client is closed ends with Cancelled
// once (reported by libambient from the loop's next iteration), also when
// the loop is closed right after the client.
func TestHBONEClientCloseEndsRunningTunnels(t *testing.T) {
	serverTLS, clientTLS := hboneTLS(t)
	echo, accepted := echoServer(t)
	for _, closeLoop := range []bool{false, true} {
		loop, err := NewLoop()
		if err != nil {
			t.Fatal(err)
		}
		// Log sinks on both: the access lines of the aborted tunnel come
		// after the frees and must not reach the (released) sinks.
		var access logLines
		srv, err := loop.NewHBONEServer(serverTLS, "127.0.0.1:0", nil, access.sink)
		if err != nil {
			t.Fatal(err)
		}
		cli, err := loop.NewHBONEClient(clientTLS, access.sink)
		if err != nil {
			t.Fatal(err)
		}
		before := atomic.LoadInt32(accepted)
		tun, err := cli.Dial(srv.Addr(), echo, []string{dbID})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tun.Conn.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		_ = tun.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(tun.Conn, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo through the tunnel: %q %v", buf, err)
		}
		if atomic.LoadInt32(accepted) != before+1 {
			t.Fatal("the upstream did not see the tunnel")
		}
		cli.Close()
		if closeLoop {
			loop.Close()
		}
		select {
		case <-tun.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the tunnel did not end after its client was closed")
		}
		res := tun.Wait()
		var e *Error
		if !errors.As(res.Err, &e) || e.Code != Cancelled {
			t.Fatalf("tunnel ended with %v, want Cancelled", res.Err)
		}
		tun.Conn.Close()
		srv.Close()
		loop.Close()
	}
}

// The flood limits reach the server: a silent connection is closed after the
// lowered SilentTimeoutMs (the default would keep it 3 s), and bad values
// are refused.
func TestHBONEServerLimits(t *testing.T) {
	serverTLS, _ := hboneTLS(t)
	loop, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	srv, err := loop.NewHBONEServer(serverTLS, "127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.SetLimit(SilentTimeoutMs, 200); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetLimit(MaxConnections, 100); err != nil {
		t.Fatal(err)
	}
	err = srv.SetLimit(SilentTimeoutMs, 1<<40)
	if !errors.Is(err, &Error{Code: InvalidArgument}) {
		t.Fatalf("timeout over 2^31 ms: %v", err)
	}
	if err := srv.SetLimit(HBONELimit(99), 1); !errors.Is(err, &Error{Code: InvalidArgument}) {
		t.Fatalf("unknown limit: %v", err)
	}
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	// The server aborts it (RST): the read ends with a reset (or EOF), not
	// with our 2 s deadline.
	if n, err := c.Read(make([]byte, 1)); n != 0 || !(err == io.EOF || errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("silent connection: read %d, %v (want the server to close it)", n, err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("closed after %v, want ~200ms", d)
	}
	srv.Close()
	if err := srv.SetLimit(MaxConnections, 1); !errors.Is(err, &Error{Code: FailedPrecondition}) {
		t.Fatalf("after Close: %v", err)
	}
}
