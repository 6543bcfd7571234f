package ambient

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestRedirectRenderDefaults(t *testing.T) {
	c := NewRedirectConfig()
	defer c.Close()
	text, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"* mangle", "* nat", "ISTIO_OUTPUT", "169.254.7.127", "COMMIT"} {
		if !strings.Contains(text, want) {
			t.Fatalf("default rules lack %q:\n%s", want, text)
		}
	}
	if strings.HasSuffix(text, "\n") || strings.Contains(text, "fd16:9254") {
		t.Fatalf("default rules: trailing newline or IPv6 rules:\n%s", text)
	}

	if err := c.SetIPv6(true); err != nil {
		t.Fatal(err)
	}
	v6, _ := c.Render()
	if !strings.Contains(v6, "fd16:9254:7127:1337:ffff:ffff:ffff:ffff") || !strings.HasPrefix(v6, text) {
		t.Fatal("IPv6 rules do not follow the IPv4 ones")
	}

	if err := c.SetBackend(RedirectNftables); err != nil {
		t.Fatal(err)
	}
	nft, err := c.Render()
	if err != nil || !strings.Contains(nft, "istio-ambient") || strings.Contains(nft, "COMMIT") {
		t.Fatalf("nftables render (%v):\n%s", err, nft)
	}
}

func TestRedirectFlagsAndSetters(t *testing.T) {
	c := NewRedirectConfig()
	defer c.Close()
	def, _ := c.Render()
	if err := c.ParseFlags([]string{"--dns-capture", "off", "--probe-snat-v4=169.254.7.99", "--reroute-interface", "wg0"}); err != nil {
		t.Fatal(err)
	}
	flags, _ := c.Render()
	if !strings.Contains(flags, "169.254.7.99") || !strings.Contains(flags, "wg0") || strings.Contains(flags, "--dport 53") {
		t.Fatalf("flags not applied:\n%s", flags)
	}

	// The same config made with setters renders the same bytes.
	s := NewRedirectConfig()
	defer s.Close()
	for _, err := range []error{s.SetDNSCapture(false), s.SetProbeSNATv4("169.254.7.99"), s.AddRerouteInterface("wg0")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if byS, _ := s.Render(); byS != flags {
		t.Fatalf("setters and flags differ:\n%s\n---\n%s", byS, flags)
	}

	// Bad flags name the argument and leave the config unchanged.
	for _, bad := range [][]string{{"--nope"}, {"--backend", "pf"}, {"--probe-snat-v4", "300.1.1.1"}, {"--kubelet-uid"}} {
		err := c.ParseFlags(bad)
		errCode(t, err, InvalidArgument, 0)
		if now, _ := c.Render(); now != flags {
			t.Fatalf("ParseFlags(%q) changed the config", bad)
		}
	}
	if err := c.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	if now, _ := c.Render(); now != def {
		t.Fatal("ParseFlags(nil) does not restore the defaults")
	}

	errCode(t, c.SetProbeSNATv4("fd00::1"), InvalidArgument, 0)
	errCode(t, c.SetProbeSNATv6("1.2.3.4"), InvalidArgument, 0)
	errCode(t, c.AddRerouteInterface("has space"), InvalidArgument, 0)
	errCode(t, c.SetBackend(RedirectBackend(7)), InvalidArgument, 0)
	on := true
	if err := c.SetPodDNSCapture(&on); err != nil {
		t.Fatal(err)
	}
	if err := c.SetPodDNSCapture(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.SetHost(true); err != nil {
		t.Fatal(err)
	}
	if err := c.SetBypassInbound(true); err != nil {
		t.Fatal(err)
	}
	if err := c.SetKubeletUID(1234); err != nil {
		t.Fatal(err)
	}

	c.Close()
	_, err := c.Render()
	errCode(t, err, FailedPrecondition, 0)
}

func TestRedirectApplyNoNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		skipUnprivileged(t)
	}
	c := NewRedirectConfig()
	defer c.Close()
	// A namespace is opened first (OpenNetns reports a missing one); a nil or
	// closed handle is refused.
	_, err := OpenNetns(fmt.Sprintf("ambient-go-missing-%d", os.Getpid()))
	errCode(t, err, NotFound, 0)
	errCode(t, c.Apply(nil), InvalidArgument, 0)
	closed, err := OpenNetns("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	_, err = c.Check(closed)
	errCode(t, err, InvalidArgument, 0)
}

func skipUnprivileged(t *testing.T) {
	t.Helper()
	if os.Getenv("AMBIENT_REQUIRE_PRIVILEGED") == "1" {
		t.Fatal("this test needs root and AMBIENT_REQUIRE_PRIVILEGED=1")
	}
	t.Skip("SKIPPED: needs root (set AMBIENT_REQUIRE_PRIVILEGED=1 to make this a failure)")
}

// withNetns runs fn in a new uniquely named network namespace, removed
// afterwards even when fn fails.
func withNetns(t *testing.T, fn func(name string)) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipUnprivileged(t)
	}
	name := fmt.Sprintf("ambient-test-%d-go-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
	if out, err := toolCommand("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := toolCommand("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	fn(name)
}

// openNs opens a handle on the namespace `name`, closed when the test ends.
func openNs(t *testing.T, name string) *Netns {
	t.Helper()
	h, err := OpenNetns(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func TestRedirectApplyCheckDelete(t *testing.T) {
	for _, backend := range []RedirectBackend{RedirectIptables, RedirectNftables} {
		t.Run(fmt.Sprint(backend), func(t *testing.T) {
			withNetns(t, func(ns string) {
				h := openNs(t, ns)
				c := NewRedirectConfig()
				defer c.Close()
				if err := c.SetBackend(backend); err != nil {
					t.Fatal(err)
				}
				drift, err := c.Check(h)
				if err != nil {
					t.Fatal(err)
				}
				if len(drift) == 0 {
					t.Fatal("an empty namespace reports no drift")
				}
				if err := c.Apply(h); err != nil {
					t.Fatal(err)
				}
				if drift, err := c.Check(h); err != nil || len(drift) != 0 {
					t.Fatalf("after Apply: drift %q, %v", drift, err)
				}
				// Through handles opened by path and by descriptor too;
				// re-applying is harmless.
				path := "/var/run/netns/" + ns
				if drift, err := c.Check(openNs(t, path)); err != nil || len(drift) != 0 {
					t.Fatalf("Check(path): drift %q, %v", drift, err)
				}
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				byFd, err := OpenNetnsFd(int(f.Fd()))
				if err != nil {
					t.Fatal(err)
				}
				defer byFd.Close()
				if err := c.Apply(byFd); err != nil {
					t.Fatalf("re-apply: %v", err)
				}
				if drift, err := c.Check(byFd); err != nil || len(drift) != 0 {
					t.Fatalf("Check(fd): drift %q, %v", drift, err)
				}
				// The rules are really in the namespace's kernel tables.
				var out []byte
				if backend == RedirectIptables {
					out, _ = toolCommand("ip", "netns", "exec", ns, "iptables-save").CombinedOutput()
					if !strings.Contains(string(out), "ISTIO_OUTPUT") {
						out, _ = toolCommand("ip", "netns", "exec", ns, "iptables-legacy-save").CombinedOutput()
					}
					if !strings.Contains(string(out), "ISTIO_OUTPUT") {
						t.Fatalf("iptables-save shows no ISTIO_OUTPUT:\n%s", out)
					}
				} else {
					out, _ = toolCommand("ip", "netns", "exec", ns, "nft", "list", "tables").CombinedOutput()
					if !strings.Contains(string(out), "istio-ambient") {
						t.Fatalf("nft list tables: %s", out)
					}
				}
				// A setting that changes the rules shows as drift.
				other := NewRedirectConfig()
				defer other.Close()
				_ = other.SetBackend(backend)
				_ = other.SetProbeSNATv4("169.254.7.99")
				if drift, err := other.Check(h); err != nil || len(drift) == 0 {
					t.Fatalf("changed config: drift %q, %v", drift, err)
				}
				if err := c.Delete(byFd); err != nil {
					t.Fatal(err)
				}
				if drift, err := c.Check(h); err != nil || len(drift) == 0 {
					t.Fatalf("after Delete: drift %q, %v", drift, err)
				}
				if err := c.Delete(h); err != nil {
					t.Fatalf("deleting twice: %v", err)
				}
			})
		})
	}
}

// toolCommand is exec.Command for a system tool, without the LD_PRELOAD of
// scripts/test-bindings-asan.sh (meant for the test program only).
func toolCommand(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LD_PRELOAD=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

// The host probe sets through the binding, for both backends: members carry
// their pod's UID, a removal with another pod's UID leaves the member, bad
// input is refused and changes nothing.
func TestRedirectProbeSets(t *testing.T) {
	for _, backend := range []RedirectBackend{RedirectIptables, RedirectNftables} {
		t.Run(fmt.Sprint(backend), func(t *testing.T) {
			withNetns(t, func(ns string) {
				h := openNs(t, ns)
				c := NewRedirectConfig()
				defer c.Close()
				for _, err := range []error{c.SetBackend(backend), c.SetHost(true), c.SetIPv6(true), c.SetKubeletUID(1000)} {
					if err != nil {
						t.Fatal(err)
					}
				}
				// No sets before the host rules are applied.
				errCodeOnly(t, c.ProbeAdd(h, "198.18.0.9", "uid-a"), NotFound)
				_, err := c.ProbeList(h)
				errCodeOnly(t, err, NotFound)
				if err := c.Apply(h); err != nil {
					t.Fatal(err)
				}
				list := func() string {
					t.Helper()
					m, err := c.ProbeList(h)
					if err != nil {
						t.Fatal(err)
					}
					var parts []string
					for _, p := range m {
						parts = append(parts, p.Address+" "+p.PodUID)
					}
					return strings.Join(parts, ",")
				}
				if got := list(); got != "" {
					t.Fatalf("fresh sets hold %q", got)
				}

				if err := c.ProbeAdd(h, "198.18.0.9", "uid-a"); err != nil {
					t.Fatal(err)
				}
				if err := c.ProbeAdd(h, "2001:db8::9", "uid-a"); err != nil {
					t.Fatal(err)
				}
				if got, want := list(), "198.18.0.9 uid-a,2001:db8::9 uid-a"; got != want {
					t.Fatalf("members %q, want %q", got, want)
				}
				// Re-adding replaces the UID.
				if err := c.ProbeAdd(h, "198.18.0.9", "uid-b"); err != nil {
					t.Fatal(err)
				}
				if got, want := list(), "198.18.0.9 uid-b,2001:db8::9 uid-a"; got != want {
					t.Fatalf("after re-add: %q, want %q", got, want)
				}
				// Another pod's UID removes nothing.
				err = c.ProbeRemove(h, "198.18.0.9", "uid-a")
				errCodeOnly(t, err, FailedPrecondition)
				if !strings.Contains(err.Error(), "uid-b") {
					t.Fatalf("refusal does not name the owner: %v", err)
				}
				if got, want := list(), "198.18.0.9 uid-b,2001:db8::9 uid-a"; got != want {
					t.Fatalf("after refused remove: %q, want %q", got, want)
				}
				// Bad input is InvalidArgument and changes nothing.
				for _, bad := range [][2]string{{"198.18.0.300", "uid-c"}, {"not-an-ip", "uid-c"}, {"", "uid-c"},
					{"198.18.0.10", ""}, {"198.18.0.10", "has space"}, {"198.18.0.10", "quo\"te"}} {
					errCodeOnly(t, c.ProbeAdd(h, bad[0], bad[1]), InvalidArgument)
				}
				errCodeOnly(t, c.ProbeRemove(h, "198.18.0.300", ""), InvalidArgument)
				if got, want := list(), "198.18.0.9 uid-b,2001:db8::9 uid-a"; got != want {
					t.Fatalf("after bad input: %q, want %q", got, want)
				}

				// A handle opened from a descriptor sees the same sets.
				f, err := os.Open("/var/run/netns/" + ns)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				byFd, err := OpenNetnsFd(int(f.Fd()))
				if err != nil {
					t.Fatal(err)
				}
				defer byFd.Close()
				if err := c.ProbeRemove(byFd, "198.18.0.9", "uid-b"); err != nil {
					t.Fatal(err)
				}
				if err := c.ProbeRemove(h, "2001:db8::9", ""); err != nil { // any UID
					t.Fatal(err)
				}
				if err := c.ProbeRemove(h, "198.18.0.9", "uid-b"); err != nil {
					t.Fatalf("removing an absent member: %v", err)
				}
				if err := c.ProbeAdd(byFd, "::ffff:198.18.0.6", "uid-c"); err != nil { // IPv4-mapped
					t.Fatal(err)
				}
				m, err := c.ProbeList(byFd)
				if err != nil || len(m) != 1 || m[0] != (ProbeMember{"198.18.0.6", "uid-c"}) {
					t.Fatalf("ProbeList(fd handle): %v, %v", m, err)
				}

				// The kernel shows the member too.
				var out []byte
				if backend == RedirectIptables {
					out, _ = toolCommand("ip", "netns", "exec", ns, "ipset", "list", "istio-inpod-probes-v4").CombinedOutput()
				} else {
					out, _ = toolCommand("ip", "netns", "exec", ns, "nft", "list", "set", "inet", "istio-ambient-nat", "istio-inpod-probes-v4").CombinedOutput()
				}
				if !strings.Contains(string(out), "198.18.0.6") || !strings.Contains(string(out), "uid-c") {
					t.Fatalf("the kernel's set lacks 198.18.0.6/uid-c:\n%s", out)
				}

				// An IPv6 address with IPv6 off is refused.
				v4 := NewRedirectConfig()
				defer v4.Close()
				_ = v4.SetBackend(backend)
				_ = v4.SetHost(true)
				errCodeOnly(t, v4.ProbeAdd(h, "2001:db8::7", "uid-d"), InvalidArgument)

				c.Close()
				errCodeOnly(t, c.ProbeAdd(h, "198.18.0.9", "uid-a"), FailedPrecondition)
				_, err = c.ProbeList(h)
				errCodeOnly(t, err, FailedPrecondition)
			})
		})
	}
}
