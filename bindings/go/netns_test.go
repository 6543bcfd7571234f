package ambient

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestNetnsHandles(t *testing.T) {
	cur, err := CurrentNetns()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	self, err := OpenNetns("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	byPid, err := OpenNetnsPid(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer byPid.Close()
	if !cur.Equal(self) || !self.Equal(byPid) {
		t.Fatal("handles on this process's namespace differ")
	}
	dev, ino := cur.ID()
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	if ino != st.Ino || dev != uint64(st.Dev) {
		t.Fatalf("ID = %d:%d, stat says %d:%d", dev, ino, st.Dev, st.Ino)
	}
	dup, err := OpenNetnsFd(cur.Fd())
	if err != nil {
		t.Fatal(err)
	}
	if dup.Fd() == cur.Fd() || !dup.Equal(cur) {
		t.Fatal("OpenNetnsFd must duplicate the descriptor")
	}
	dup.Close()
	dup.Close()
	if dup.Fd() != -1 || dup.Equal(cur) {
		t.Fatal("a closed handle still answers")
	}
	if cur.Fd() < 0 {
		t.Fatal("closing a duplicate closed the original")
	}

	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = OpenNetnsFd(int(f.Fd()))
	errCode(t, err, InvalidArgument, 0)
	_, err = OpenNetnsFd(-1)
	errCode(t, err, InvalidArgument, 0)
	_, err = OpenNetns(fmt.Sprintf("ambient-go-missing-%d", os.Getpid()))
	errCode(t, err, NotFound, 0)
	_, err = OpenNetns("/proc/self/ns/uts")
	errCode(t, err, InvalidArgument, 0)
	_, err = OpenNetnsPid(0)
	errCode(t, err, InvalidArgument, 0)
}

func TestUnnamedNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		skipUnprivileged(t)
	}
	ns, err := NewUnnamedNetns()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	cur, _ := CurrentNetns()
	defer cur.Close()
	if ns.Equal(cur) {
		t.Fatal("a new namespace equals the current one")
	}
	if err := ns.LoopbackUp(); err != nil {
		t.Fatal(err)
	}
}

func TestZDSAgentWithoutProxy(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "zds.sock")
	a, err := NewZDSAgent(ZDSAgentOptions{SocketPath: sock, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("no socket at %s: %v", sock, err)
	}
	if a.ProxyCount() != 0 {
		t.Fatal("proxies connected out of nowhere")
	}
	errCode(t, a.WaitForProxies(1, 20*time.Millisecond), DeadlineExceeded, 0)
	ns, err := CurrentNetns()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	errCode(t, a.Add("pod-1", ZDSWorkload{Name: "web"}, ns), Unavailable, 0)
	errCode(t, a.Add("", ZDSWorkload{}, ns), InvalidArgument, 0)
	errCode(t, a.Add("pod-2", ZDSWorkload{}, nil), InvalidArgument, 0)
	errCode(t, a.Add("pod-3", ZDSWorkload{Name: string([]byte{0xff, 0xfe})}, ns), InvalidArgument, 0)
	if err := a.Keep("pod-4"); err != nil {
		t.Fatal(err)
	}
	a.Close()
	a.Close()
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket file left behind: %v", err)
	}
	errCode(t, a.Del("pod-1"), FailedPrecondition, 0)

	// Bad settings and paths.
	_, err = NewZDSAgent(ZDSAgentOptions{SocketPath: "/" + strings.Repeat("a", 120)})
	errCode(t, err, InvalidArgument, 0)
	_, err = NewZDSAgent(ZDSAgentOptions{SocketPath: filepath.Join(dir, "missing", "zds.sock")})
	errCode(t, err, NotFound, 0)
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = NewZDSAgent(ZDSAgentOptions{SocketPath: plain})
	errCode(t, err, AlreadyExists, 0)
	if b, _ := os.ReadFile(plain); string(b) != "x" {
		t.Fatal("the agent clobbered a regular file")
	}
}

// TestZDSAgentHandsPodToProxy runs ambientctl's ZDS proxy (the C ABI's
// proxy end) against the Go agent and a namespace made for the test.
func TestZDSAgentHandsPodToProxy(t *testing.T) {
	if os.Geteuid() != 0 {
		skipUnprivileged(t)
	}
	ctl := filepath.Join(os.Getenv("AMBIENT_BUILD_DIR"), "examples", "ambientctl", "ambientctl")
	if _, err := os.Stat(ctl); err != nil {
		t.Skipf("SKIPPED: no ambientctl at %s (set AMBIENT_BUILD_DIR)", ctl)
	}
	withNetns(t, func(nsName string) {
		sock := filepath.Join(t.TempDir(), "zds.sock")
		var mu sync.Mutex
		var logged []string
		a, err := NewZDSAgent(ZDSAgentOptions{SocketPath: sock, Timeout: 5 * time.Second,
			Log: func(level LogLevel, component, message string) {
				mu.Lock()
				logged = append(logged, fmt.Sprintf("%s %s %s", level, component, message))
				mu.Unlock()
			}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			a.Close()
			mu.Lock()
			defer mu.Unlock()
			t.Logf("agent log: %d lines, first %q", len(logged), logged)
			if len(logged) == 0 || !strings.Contains(logged[0], " zds ") {
				t.Errorf("the agent's log sink saw %q", logged)
			}
		}()
		proxy := exec.Command(ctl, "zds", "proxy", "--socket", sock, "--no-dns")
		out, err := proxy.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		proxy.Stderr = os.Stderr
		if err := proxy.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = proxy.Process.Kill()
			_ = proxy.Wait()
		}()
		lines := make(chan string, 16)
		go func() {
			s := bufio.NewScanner(out)
			for s.Scan() {
				lines <- s.Text()
			}
			close(lines)
		}()
		expect := func(prefix string) string {
			t.Helper()
			deadline := time.After(10 * time.Second)
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("proxy exited before %q", prefix)
					}
					if strings.HasPrefix(l, prefix) {
						return l
					}
				case <-deadline:
					t.Fatalf("no %q from the proxy", prefix)
				}
			}
		}
		if err := a.WaitForProxies(1, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		expect("snapshot-complete")
		if a.ProxyCount() != 1 {
			t.Fatalf("ProxyCount = %d", a.ProxyCount())
		}
		ns, err := OpenNetns(nsName)
		if err != nil {
			t.Fatal(err)
		}
		defer ns.Close()
		if err := a.Add("uid-go-1", ZDSWorkload{Name: "web", Namespace: "shop", ServiceAccount: "web-sa"}, ns); err != nil {
			t.Fatal(err)
		}
		dev, ino := ns.ID()
		line := expect("add uid=uid-go-1")
		for _, want := range []string{"name=web", "namespace=shop", "service_account=web-sa", fmt.Sprintf("netns=%d:%d", dev, ino)} {
			if !strings.Contains(line, want) {
				t.Fatalf("proxy saw %q, want %s", line, want)
			}
		}
		if err := a.Del("uid-go-1"); err != nil {
			t.Fatal(err)
		}
		expect("del uid=uid-go-1")
	})
}

func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestNetnsCloseReleasesDescriptors(t *testing.T) {
	before := openFds(t)
	for i := 0; i < 500; i++ {
		ns, err := CurrentNetns()
		if err != nil {
			t.Fatal(err)
		}
		dup, err := OpenNetnsFd(ns.Fd())
		if err != nil {
			t.Fatal(err)
		}
		dup.Close()
		ns.Close()
	}
	if after := openFds(t); after > before+2 {
		t.Fatalf("descriptors: %d before, %d after 1000 handles opened and closed", before, after)
	}
	// Agents release their listening socket too.
	dir := t.TempDir()
	before = openFds(t)
	for i := 0; i < 20; i++ {
		a, err := NewZDSAgent(ZDSAgentOptions{SocketPath: filepath.Join(dir, "zds.sock")})
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
	}
	if after := openFds(t); after > before+2 {
		t.Fatalf("descriptors: %d before, %d after 20 agents", before, after)
	}
}
