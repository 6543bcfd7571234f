package ambient

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// zdsRecorder is a ZDS proxy's host side that records what it was told.
type zdsRecorder struct {
	mu      sync.Mutex
	added   map[string]ZDSWorkload
	ids     map[string][2]uint64 // netns (dev, ino) per pod
	removed []string
	events  []ZDSEvent
	refuse  map[string]string // uid -> reason to refuse with
	changed chan struct{}
}

func newZDSRecorder() *zdsRecorder {
	return &zdsRecorder{added: map[string]ZDSWorkload{}, ids: map[string][2]uint64{},
		refuse: map[string]string{}, changed: make(chan struct{}, 64)}
}

func (r *zdsRecorder) note() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *zdsRecorder) options(sock string) ZDSProxyOptions {
	return ZDSProxyOptions{
		SocketPath:     sock,
		InitialBackoff: 10 * time.Millisecond,
		MaxBackoff:     100 * time.Millisecond,
		Add: func(uid string, w ZDSWorkload, netns *Netns) error {
			defer netns.Close()
			if uid == "uid-panic" {
				panic("handler bug")
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			defer r.note()
			if why, ok := r.refuse[uid]; ok {
				return errors.New(why)
			}
			dev, ino := netns.ID()
			r.added[uid] = w
			r.ids[uid] = [2]uint64{dev, ino}
			return nil
		},
		Remove: func(uid string) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.removed = append(r.removed, uid)
			delete(r.added, uid)
			r.note()
		},
		Event: func(e ZDSEvent, detail string) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.events = append(r.events, e)
			r.note()
		},
	}
}

// wait waits up to 10 s for cond (called with r.mu held).
func (r *zdsRecorder) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestZDSProxyOptionsAreChecked(t *testing.T) {
	_, err := NewZDSProxy(ZDSProxyOptions{Remove: func(string) {}})
	errCode(t, err, InvalidArgument, 0)
	r := newZDSRecorder()
	o := r.options("/" + strings.Repeat("x", 200))
	_, err = NewZDSProxy(o)
	errCode(t, err, InvalidArgument, 0)
	o = r.options(filepath.Join(t.TempDir(), "zds.sock"))
	o.InitialBackoff, o.MaxBackoff = time.Second, time.Millisecond
	_, err = NewZDSProxy(o)
	errCode(t, err, InvalidArgument, 0)
	// No agent: the proxy keeps trying and is not ready.
	p, err := NewZDSProxy(r.options(filepath.Join(t.TempDir(), "zds.sock")))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	errCode(t, p.Start(), FailedPrecondition, 0)
	time.Sleep(50 * time.Millisecond)
	if p.Ready() || p.WorkloadCount() != 0 {
		t.Fatal("a proxy without agent reports ready")
	}
	p.Close()
	errCode(t, p.Start(), FailedPrecondition, 0)
}

// TestZDSGoAgentToGoProxy runs both ZDS ends of the binding against each
// other over a unix socket in a temp dir and hands over a namespace of the
// test's own.
func TestZDSGoAgentToGoProxy(t *testing.T) {
	withNetns(t, func(nsName string) {
		sock := filepath.Join(t.TempDir(), "zds.sock")
		ns, err := OpenNetns(nsName)
		if err != nil {
			t.Fatal(err)
		}
		defer ns.Close()
		dev, ino := ns.ID()
		a, err := NewZDSAgent(ZDSAgentOptions{SocketPath: sock, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		// Recorded before any proxy is there: goes out with the snapshot.
		errCode(t, a.Add("uid-snap", ZDSWorkload{Name: "web", Namespace: "shop", ServiceAccount: "web-sa"}, ns), Unavailable, 0)

		r := newZDSRecorder()
		r.refuse["uid-refused"] = "no listeners for this pod yet"
		var logMu sync.Mutex
		var logged []string
		o := r.options(sock)
		o.Log = func(level LogLevel, component, message string) {
			logMu.Lock()
			logged = append(logged, component+" "+message)
			logMu.Unlock()
		}
		p, err := NewZDSProxy(o)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		if err := a.WaitForProxies(1, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		r.wait(t, "the snapshot", func() bool {
			for _, e := range r.events {
				if e == ZDSSnapshotComplete {
					return true
				}
			}
			return false
		})
		r.mu.Lock()
		w, ok := r.added["uid-snap"]
		id := r.ids["uid-snap"]
		r.mu.Unlock()
		if !ok || w != (ZDSWorkload{Name: "web", Namespace: "shop", ServiceAccount: "web-sa"}) {
			t.Fatalf("snapshot pod: %+v %v", w, ok)
		}
		if id != [2]uint64{dev, ino} {
			t.Fatalf("proxy got netns %v, agent sent %d:%d", id, dev, ino)
		}
		if !p.Ready() || p.WorkloadCount() != 1 {
			t.Fatalf("ready %v, %d workloads", p.Ready(), p.WorkloadCount())
		}

		// A live add; then one the proxy refuses, whose reason reaches the agent.
		if err := a.Add("uid-live", ZDSWorkload{Name: "db"}, ns); err != nil {
			t.Fatal(err)
		}
		r.mu.Lock()
		_, ok = r.added["uid-live"]
		r.mu.Unlock()
		if !ok || p.WorkloadCount() != 2 {
			t.Fatalf("live add not served (%d workloads)", p.WorkloadCount())
		}
		err = a.Add("uid-refused", ZDSWorkload{}, ns)
		errCode(t, err, Aborted, 0)
		if !strings.Contains(err.Error(), "no listeners for this pod yet") {
			t.Fatalf("refusal reason lost: %v", err)
		}
		if p.Ready() {
			t.Fatal("ready with a refused pod pending")
		}

		// A panicking handler refuses the pod instead of unwinding into C.
		err = a.Add("uid-panic", ZDSWorkload{}, ns)
		errCode(t, err, Aborted, 0)
		if !strings.Contains(err.Error(), "handler bug") {
			t.Fatalf("panic not reported as the refusal: %v", err)
		}
		if err := a.Del("uid-panic"); err != nil {
			t.Fatal(err)
		}

		if err := a.Del("uid-live"); err != nil {
			t.Fatal(err)
		}
		r.mu.Lock()
		removed := append([]string(nil), r.removed...)
		r.mu.Unlock()
		if len(removed) != 1 || removed[0] != "uid-live" {
			t.Fatalf("removed %q", removed)
		}
		// Deleting the refused pod drops its retry: ready again.
		if err := a.Del("uid-refused"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !p.Ready() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !p.Ready() {
			t.Fatal("not ready after the refused pod was deleted")
		}

		// The agent going away is seen as a disconnection.
		a.Close()
		if _, err := os.Stat(sock); !os.IsNotExist(err) {
			t.Fatalf("socket left behind: %v", err)
		}
		r.wait(t, "the disconnection", func() bool {
			return len(r.events) > 0 && r.events[len(r.events)-1] == ZDSDisconnected
		})
		p.Close()
		logMu.Lock()
		defer logMu.Unlock()
		if len(logged) == 0 || !strings.HasPrefix(logged[0], "zds ") {
			t.Errorf("proxy log sink saw %q", logged)
		}
		t.Logf("proxy log: %s", fmt.Sprint(len(logged), " lines"))
	})
}
