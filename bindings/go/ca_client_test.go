package ambient

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const caTestID = "spiffe://cluster.local/ns/ns1/sa/sa-a"

// fakeCA runs tests/xds/fake_istiod.py --ca with a CA of cluster.local and
// returns its address and the CA requests it reports.
func fakeCA(t *testing.T) (string, <-chan map[string]any, []byte) {
	t.Helper()
	return fakeIstiod(t, nil)
}

// fakeIstiod is fakeCA with istiod's state (--state) set by `commands`
// (fake_istiod.py's JSON lines) before any client connects.
func fakeIstiod(t *testing.T, commands []string) (string, <-chan map[string]any, []byte) {
	t.Helper()
	top, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	protoc := exec.Command("protoc", "--python_out="+dir, "-I", top+"/lib/xds", "-I", top+"/lib/authz",
		"-I", "/usr/include", top+"/lib/xds/discovery.proto", top+"/lib/xds/workload.proto",
		top+"/lib/xds/ca.proto", top+"/lib/authz/authorization.proto")
	protoc.Env = append(os.Environ(), "LD_PRELOAD=") // scripts/test-bindings-asan.sh: not for tools
	if out, err := protoc.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v: %s", err, out)
	}
	now := time.Now()
	ca := issue(t, nil, "spiffe://cluster.local", true, now.Add(-time.Hour), now.Add(72*time.Hour))
	for name, b := range map[string][]byte{"ca.pem": ca.pem, "ca.key": ca.keyPEM, "token": []byte("tok-go")} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("/usr/bin/python3", top+"/tests/xds/fake_istiod.py", dir, "--ca",
		filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key"), "--state")
	cmd.Env = append(os.Environ(), "LD_PRELOAD=") // scripts/test-bindings-asan.sh: not for python
	// The fake reads commands from stdin and stops at its end: keep it open.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatal("fake istiod printed no port")
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines.Text()))
	if err != nil {
		t.Fatalf("fake istiod: %q", lines.Text())
	}
	for _, c := range commands {
		if _, err := stdin.Write([]byte(c + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	reqs := make(chan map[string]any, 64)
	go func() {
		for lines.Scan() {
			var m map[string]any
			if json.Unmarshal(lines.Bytes(), &m) == nil && m["type"] == "ca" {
				reqs <- m
			}
		}
	}()
	return "127.0.0.1:" + strconv.Itoa(port), reqs, ca.pem
}

func waitState(t *testing.T, cert *CACertificate, want CAState) CAStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := cert.Status()
		if err != nil {
			t.Fatal(err)
		}
		if s.State == want {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %v, want %v (last error %q)", s.State, want, s.LastError)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCAClientAcquiresACertificate(t *testing.T) {
	addr, reqs, caPEM := fakeCA(t)
	loop, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("tok-go"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loop.NewCAClient(CAClientOptions{Address: addr, TokenFile: token, ClusterID: "cluster-go",
		Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cert, err := c.Acquire(caTestID)
	if err != nil {
		t.Fatal(err)
	}
	defer cert.Close()
	if cert.ID() != caTestID {
		t.Errorf("ID %q", cert.ID())
	}
	s := waitState(t, cert, CAAvailable)
	if d := time.Until(s.NotAfter); d < 58*time.Minute || d > 62*time.Minute {
		t.Errorf("NotAfter in %v, want about the hour asked for", d)
	}
	if s.Failures != 0 || s.LastError != "" {
		t.Errorf("status %+v", s)
	}
	chain, key, err := cert.PEM()
	if err != nil {
		t.Fatal(err)
	}
	// The pair loads, and its leaf names the identity.
	creds, err := NewCredentialsPEM(chain, key)
	if err != nil {
		t.Fatal(err)
	}
	defer creds.Close()
	if id, err := creds.ID(); err != nil || id.String() != caTestID {
		t.Errorf("leaf %v %v", id, err)
	}
	if root, err := cert.RootPEM(); err != nil || string(root) != string(caPEM) {
		t.Errorf("root %q %v, want the CA's", root, err)
	}
	live, err := cert.Credentials()
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if id, err := live.ID(); err != nil || id.String() != caTestID {
		t.Errorf("credentials %v %v", id, err)
	}
	select {
	case r := <-reqs:
		if r["identity"] != caTestID || r["auth"] != "Bearer tok-go" || r["clusterid"] != "cluster-go" {
			t.Errorf("CA request %v", r)
		}
	case <-time.After(5 * time.Second):
		t.Error("the CA saw no request")
	}
}

func TestCAClientBadOptions(t *testing.T) {
	loop, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	for name, o := range map[string]CAClientOptions{
		"no address":    {},
		"bad address":   {Address: "no-port"},
		"missing roots": {Address: "127.0.0.1:15012", RootsPEMFile: "/nonexistent/roots.pem"},
	} {
		_, err := loop.NewCAClient(o)
		var e *Error
		if !asError(err, &e) || e.Message == "" {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want := InvalidArgument
		if name == "missing roots" {
			want = NotFound
			if !strings.Contains(e.Message, "/nonexistent/roots.pem") {
				t.Errorf("%s: %q does not name the file", name, e.Message)
			}
		}
		if e.Code != want {
			t.Errorf("%s: code %v, want %v", name, e.Code, want)
		}
	}
	c, err := loop.NewCAClient(CAClientOptions{Address: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "https://cluster.local/ns/a/sa/b"} {
		_, err := c.Acquire(id)
		var e *Error
		if !asError(err, &e) || e.Code != InvalidArgument {
			t.Errorf("Acquire(%q): %v", id, err)
		}
	}
	c.Close()
	if _, err := c.Acquire(caTestID); err == nil {
		t.Error("Acquire on a closed client worked")
	}
}

func TestCAClientClosedFirstLeavesCertificatesUsable(t *testing.T) {
	addr, _, _ := fakeCA(t)
	loop, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	c, err := loop.NewCAClient(CAClientOptions{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := c.Acquire(caTestID)
	if err != nil {
		t.Fatal(err)
	}
	want := waitState(t, cert, CAAvailable)
	c.Close()
	if s, err := cert.Status(); err != nil || s.State != CAAvailable || !s.NotAfter.Equal(want.NotAfter) {
		t.Errorf("after Close: %+v %v", s, err)
	}
	cert.Close()
	if _, err := cert.Status(); err == nil {
		t.Error("Status of a closed certificate worked")
	}
}
