package ambient

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// hbonePair shuttles bytes between a client and a server HBONEConn in
// memory and collects their events.
type hbonePair struct {
	c, s     *HBONEConn
	cEv, sEv []HBONEEvent
}

func (p *hbonePair) step(t *testing.T) {
	t.Helper()
	now := NowNanos()
	if out := p.c.PendingOutput(); len(out) > 0 {
		p.c.ConsumeOutput(len(out))
		_ = p.s.Receive(out, now) // failures also come as ConnectionClosed
	}
	if out := p.s.PendingOutput(); len(out) > 0 {
		p.s.ConsumeOutput(len(out))
		_ = p.c.Receive(out, now)
	}
	for _, c := range []*HBONEConn{p.c, p.s} {
		if d, ok := c.NextDeadline(); ok && d <= now {
			c.OnTimeout(now)
		}
	}
	for {
		ev, ok := p.c.PollEvent()
		if !ok {
			break
		}
		p.cEv = append(p.cEv, ev)
	}
	for {
		ev, ok := p.s.PollEvent()
		if !ok {
			break
		}
		p.sEv = append(p.sEv, ev)
	}
}

func (p *hbonePair) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 10000 {
			t.Fatalf("no %s; client events %+v, server events %+v", what, p.cEv, p.sEv)
		}
		p.step(t)
	}
}

func find(evs []HBONEEvent, typ HBONEEventType) *HBONEEvent {
	for i := range evs {
		if evs[i].Type == typ {
			return &evs[i]
		}
	}
	return nil
}

func newHBONEPair(t *testing.T, expected []string) *hbonePair {
	serverTLS, clientTLS := hboneTLS(t)
	c, err := NewHBONEConn(clientTLS, expected)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewHBONEConn(serverTLS, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	now := NowNanos()
	c.Start(now)
	s.Start(now)
	if d, ok := c.NextDeadline(); !ok || d < now || d > now+uint64(11*time.Second) {
		t.Fatalf("handshake deadline %d (now %d, set %v)", d, now, ok)
	}
	return &hbonePair{c: c, s: s}
}

func TestHBONEConnInMemory(t *testing.T) {
	p := newHBONEPair(t, []string{dbID})
	p.until(t, "handshakes", func() bool {
		return find(p.cEv, HBONEHandshakeDone) != nil && find(p.sEv, HBONEHandshakeDone) != nil
	})
	if p.c.PeerIdentity() != dbID || p.s.PeerIdentity() != webID {
		t.Fatalf("peers %q %q", p.c.PeerIdentity(), p.s.PeerIdentity())
	}
	id, err := p.c.OpenStream("10.1.2.3:8080", []HBONEHeader{{Name: "baggage", Value: []byte("k8s.pod.name=web")}})
	if err != nil {
		t.Fatal(err)
	}
	p.until(t, "the CONNECT", func() bool { return find(p.sEv, HBONEStreamRequest) != nil })
	req := find(p.sEv, HBONEStreamRequest)
	if req.Authority != "10.1.2.3:8080" {
		t.Fatalf("authority %q", req.Authority)
	}
	found := false
	for _, h := range req.Headers {
		found = found || (h.Name == "baggage" && string(h.Value) == "k8s.pod.name=web")
	}
	if !found {
		t.Fatalf("headers %+v", req.Headers)
	}
	if err := p.s.AcceptStream(req.Stream); err != nil {
		t.Fatal(err)
	}
	p.until(t, "the 200", func() bool { return find(p.cEv, HBONEStreamResponse) != nil })
	if r := find(p.cEv, HBONEStreamResponse); r.HTTPStatus != 200 || r.Stream != id {
		t.Fatalf("response %+v", r)
	}
	if n, err := p.c.StreamWrite(id, []byte("ping")); n != 4 || err != nil {
		t.Fatalf("write %d %v", n, err)
	}
	if err := p.c.StreamShutdownWrite(id); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 1024)
	p.until(t, "the request bytes and EOF", func() bool {
		n, err := p.s.StreamRead(req.Stream, buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
		return p.s.StreamAtEOF(req.Stream)
	})
	if string(got) != "ping" {
		t.Fatalf("server read %q", got)
	}
	// Unknown streams are refused with a code, the connection lives on.
	_, err = p.s.StreamWrite(999, []byte("x"))
	errCodeOnly(t, err, NotFound)
	_, err = p.s.OpenStream("10.1.2.3:1", nil)
	errCodeOnly(t, err, FailedPrecondition)
	_, err = p.c.OpenStream("no port", nil)
	errCodeOnly(t, err, InvalidArgument)
	if p.c.IsClosed() || p.s.IsClosed() {
		t.Fatal("a refused call closed the connection")
	}
	// The server ends its side; once the client has read it all, draining
	// closes the connection.
	if err := p.s.StreamShutdownWrite(req.Stream); err != nil {
		t.Fatal(err)
	}
	p.until(t, "the reply EOF", func() bool {
		if _, err := p.c.StreamRead(id, buf); err != nil {
			t.Fatal(err)
		}
		return p.c.StreamAtEOF(id)
	})
	p.c.Drain()
	p.until(t, "the close", func() bool { return p.c.IsClosed() })
	if ev := find(p.cEv, HBONEConnectionClosed); ev == nil || ev.Err != nil {
		t.Fatalf("close event %+v", ev)
	}
}

func TestHBONEConnRefusesUnexpectedServer(t *testing.T) {
	p := newHBONEPair(t, []string{"spiffe://example.org/ns/default/sa/other"})
	p.until(t, "the client to give up", func() bool { return p.c.IsClosed() })
	if find(p.cEv, HBONEHandshakeDone) != nil {
		t.Fatal("handshake completed with an unexpected server")
	}
	ev := find(p.cEv, HBONEConnectionClosed)
	var e *Error
	if ev == nil || !errors.As(ev.Err, &e) || (e.Code != PermissionDenied && e.Code != Unauthenticated) {
		t.Fatalf("close event %+v", ev)
	}
	if p.c.PeerIdentity() != "" {
		t.Fatalf("peer identity %q after a refused handshake", p.c.PeerIdentity())
	}
	_, err := NewHBONEConn(&HBONETLS{}, nil)
	errCode(t, err, FailedPrecondition, 0)
	serverTLS, clientTLS := hboneTLS(t)
	_, err = NewHBONEConn(clientTLS, []string{"not a spiffe id"})
	errCode(t, err, InvalidArgument, SpiffeIDBadScheme) // the SPIFFE ID rule it breaks
	// Garbage on the wire closes a server connection with an error.
	s, err := NewHBONEConn(serverTLS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Start(NowNanos())
	if err := s.Receive(bytes.Repeat([]byte{0x16, 0x03, 0x01, 0xff, 0xff}, 10), NowNanos()); err == nil {
		t.Fatal("garbage accepted")
	}
	if !s.IsClosed() {
		t.Fatal("connection open after garbage")
	}
}

func errCodeOnly(t *testing.T, err error, code Code) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("want %v, got %v", code, err)
	}
}

// StreamResetWith(ResetConnectError) reaches the peer as an error naming
// CONNECT_ERROR (its proxy then resets its TCP side); ResetCancel is a clean
// end; a code outside ResetCode is refused and sends nothing.
func TestHBONEStreamResetWithCode(t *testing.T) {
	p := newHBONEPair(t, []string{dbID})
	p.until(t, "handshakes", func() bool {
		return find(p.cEv, HBONEHandshakeDone) != nil && find(p.sEv, HBONEHandshakeDone) != nil
	})
	closed := func(evs []HBONEEvent, stream int32) *HBONEEvent {
		for i := range evs {
			if evs[i].Type == HBONEStreamClosed && evs[i].Stream == stream {
				return &evs[i]
			}
		}
		return nil
	}
	for _, c := range []struct {
		code    ResetCode
		wantErr string // "" for a clean end
	}{{ResetConnectError, "CONNECT_ERROR"}, {ResetCancel, ""}} {
		p.sEv = nil
		id, err := p.c.OpenStream("10.1.2.3:8080", nil)
		if err != nil {
			t.Fatal(err)
		}
		p.until(t, "the CONNECT", func() bool { return find(p.sEv, HBONEStreamRequest) != nil })
		sid := find(p.sEv, HBONEStreamRequest).Stream
		if err := p.s.AcceptStream(sid); err != nil {
			t.Fatal(err)
		}
		p.until(t, "the 200", func() bool {
			for _, e := range p.cEv {
				if e.Type == HBONEStreamResponse && e.Stream == id {
					return true
				}
			}
			return false
		})
		errCodeOnly(t, p.s.StreamResetWith(sid, ResetCode(1)), InvalidArgument)
		errCodeOnly(t, p.s.StreamResetWith(999, c.code), NotFound)
		if err := p.s.StreamResetWith(sid, c.code); err != nil {
			t.Fatal(err)
		}
		p.until(t, "the reset", func() bool { return closed(p.cEv, id) != nil })
		got := closed(p.cEv, id).Err
		if c.wantErr == "" && got != nil {
			t.Errorf("reset %d: client stream ended with %v, want a clean end", c.code, got)
		}
		if c.wantErr != "" && (got == nil || !strings.Contains(got.Error(), c.wantErr)) {
			t.Errorf("reset %d: client stream ended with %v, want %s", c.code, got, c.wantErr)
		}
	}
}
