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
	errCode(t, c.Apply(fmt.Sprintf("ambient-go-missing-%d", os.Getpid())), NotFound, 0)
	_, err := c.Check("/nonexistent/ns/net")
	if err == nil {
		t.Fatal("Check on a missing path succeeded")
	}
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
	name := fmt.Sprintf("ambient-go-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
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

func TestRedirectApplyCheckDelete(t *testing.T) {
	for _, backend := range []RedirectBackend{RedirectIptables, RedirectNftables} {
		t.Run(fmt.Sprint(backend), func(t *testing.T) {
			withNetns(t, func(ns string) {
				c := NewRedirectConfig()
				defer c.Close()
				if err := c.SetBackend(backend); err != nil {
					t.Fatal(err)
				}
				drift, err := c.Check(ns)
				if err != nil {
					t.Fatal(err)
				}
				if len(drift) == 0 {
					t.Fatal("an empty namespace reports no drift")
				}
				if err := c.Apply(ns); err != nil {
					t.Fatal(err)
				}
				if drift, err := c.Check(ns); err != nil || len(drift) != 0 {
					t.Fatalf("after Apply: drift %q, %v", drift, err)
				}
				// Through a path and a descriptor too; re-applying is harmless.
				path := "/var/run/netns/" + ns
				if drift, err := c.Check(path); err != nil || len(drift) != 0 {
					t.Fatalf("Check(path): drift %q, %v", drift, err)
				}
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := c.ApplyFd(int(f.Fd())); err != nil {
					t.Fatalf("re-apply: %v", err)
				}
				notNs, err := os.Open("/proc/self/status")
				if err != nil {
					t.Fatal(err)
				}
				defer notNs.Close()
				errCode(t, c.ApplyFd(int(notNs.Fd())), InvalidArgument, 0)
				if drift, err := c.CheckFd(int(f.Fd())); err != nil || len(drift) != 0 {
					t.Fatalf("CheckFd: drift %q, %v", drift, err)
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
				if drift, err := other.Check(ns); err != nil || len(drift) == 0 {
					t.Fatalf("changed config: drift %q, %v", drift, err)
				}
				if err := c.DeleteFd(int(f.Fd())); err != nil {
					t.Fatal(err)
				}
				if drift, err := c.Check(ns); err != nil || len(drift) == 0 {
					t.Fatalf("after Delete: drift %q, %v", drift, err)
				}
				if err := c.Delete(ns); err != nil {
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
