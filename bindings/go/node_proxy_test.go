package ambient

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const webSVID = "spiffe://cluster.local/ns/shop/sa/web"

// nodeProxyOptions describes one HBONE workload "web" (uid uid-web) of
// cluster.local with its SVID.
func nodeProxyOptions(t *testing.T) NodeProxyOptions {
	t.Helper()
	now := time.Now()
	ca := issue(t, nil, "spiffe://cluster.local", true, now.Add(-time.Hour), now.Add(24*time.Hour))
	web := issue(t, ca, webSVID, false, now.Add(-time.Hour), now.Add(time.Hour))
	return NodeProxyOptions{
		Workloads: []NodeProxyWorkload{{UID: "uid-web", Name: "web", Namespace: "shop",
			ServiceAccount: "web", Addresses: []string{"198.18.0.10"}, HBONE: true}},
		TrustBundles: map[string][]byte{"cluster.local": ca.pem},
		SVIDs:        map[string]NodeProxySVID{"uid-web": {ChainPEM: web.pem, KeyPEM: web.keyPEM}},
	}
}

func TestNodeProxyOptionsAreChecked(t *testing.T) {
	loop, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	good := nodeProxyOptions(t)
	for name, mutate := range map[string]func(o *NodeProxyOptions){
		"address":  func(o *NodeProxyOptions) { o.Workloads[0].Addresses = []string{"not-an-ip"} },
		"identity": func(o *NodeProxyOptions) { o.Workloads[0].TrustDomain = "Bad_Domain" },
		"bundle":   func(o *NodeProxyOptions) { o.TrustBundles = map[string][]byte{"cluster.local": []byte("junk")} },
		"svid":     func(o *NodeProxyOptions) { o.SVIDs = map[string]NodeProxySVID{"uid-web": {ChainPEM: []byte("junk")}} },
		"policies": func(o *NodeProxyOptions) { o.PoliciesJSON = []byte(`{"policies": [`) },
		"dns":      func(o *NodeProxyOptions) { o.DNS, o.DNSUpstreams = true, "192.0.2.1:53,dns.example" },
	} {
		o := good
		o.Workloads = append([]NodeProxyWorkload(nil), good.Workloads...)
		mutate(&o)
		_, err := loop.NewNodeProxy(o)
		var e *Error
		if !asError(err, &e) || e.Code != InvalidArgument || e.Message == "" {
			t.Errorf("%s: got %v, want InvalidArgument with a message", name, err)
		}
	}
	p, err := loop.NewNodeProxy(good)
	if err != nil {
		t.Fatal(err)
	}
	// Own namespace handle: needs no privileges; the pod is unknown.
	cur, err := CurrentNetns()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	errCode(t, p.AddPod("uid-nobody", "nobody", "shop", cur), NotFound, 0)
	if removed, err := p.RemovePod("uid-nobody"); removed || err != nil {
		t.Fatalf("RemovePod of an unknown pod: %v %v", removed, err)
	}
	if p.PodCount() != 0 {
		t.Fatalf("%d pods", p.PodCount())
	}
	errCode(t, p.StartZDS("/"+strings.Repeat("x", 200)), InvalidArgument, 0)
	if m := p.DNSMetrics(); m != "" {
		t.Errorf("DNS metrics with DNS off: %q", m)
	}
	p.Close()
	// With DNS on, the proxy has the istio_dns_* counters from the start.
	withDNS := good
	withDNS.DNS, withDNS.DNSUpstreams = true, "192.0.2.1:53"
	d, err := loop.NewNodeProxy(withDNS)
	if err != nil {
		t.Fatal(err)
	}
	if m := d.DNSMetrics(); !strings.Contains(m, `istio_dns_requests_total{request_protocol="udp"} 0`) {
		t.Errorf("DNS metrics: %q", m)
	}
	d.Close()
	if m := d.DNSMetrics(); m != "" {
		t.Errorf("DNS metrics after Close: %q", m)
	}
	errCode(t, p.AddPod("uid-web", "", "", cur), FailedPrecondition, 0)
}

// listening reports the TCP ports listening in netns name.
func listening(t *testing.T, name string) string {
	t.Helper()
	out, err := toolCommand("ip", "netns", "exec", name, "ss", "-Hltn").CombinedOutput()
	if err != nil {
		t.Fatalf("ss in %s: %v: %s", name, err, out)
	}
	return string(out)
}

// TestNodeProxyCapturesPods captures a pod of the test's own namespace
// directly and then through ZDS from the Go agent.
func TestNodeProxyCapturesPods(t *testing.T) {
	withNetns(t, func(nsName string) {
		ns, err := OpenNetns(nsName)
		if err != nil {
			t.Fatal(err)
		}
		defer ns.Close()
		if err := ns.LoopbackUp(); err != nil {
			t.Fatal(err)
		}
		loop, err := NewLoop()
		if err != nil {
			t.Fatal(err)
		}
		defer loop.Close()
		var logs logLines
		o := nodeProxyOptions(t)
		o.Log = logs.sink
		p, err := loop.NewNodeProxy(o)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()

		if err := p.AddPod("uid-web", "", "", ns); err != nil {
			t.Fatal(err)
		}
		if p.PodCount() != 1 {
			t.Fatalf("%d pods after AddPod", p.PodCount())
		}
		ports := listening(t, nsName)
		for _, port := range []string{":15001", ":15006", ":15008"} {
			if !strings.Contains(ports, port) {
				t.Fatalf("no listener on %s in the pod:\n%s", port, ports)
			}
		}
		if removed, err := p.RemovePod("uid-web"); !removed || err != nil {
			t.Fatalf("RemovePod: %v %v", removed, err)
		}
		if ports := listening(t, nsName); strings.Contains(ports, ":15008") {
			t.Fatalf("listeners left after RemovePod:\n%s", ports)
		}

		// The same pod handed over by the Go ZDS agent.
		sock := filepath.Join(t.TempDir(), "zds.sock")
		a, err := NewZDSAgent(ZDSAgentOptions{SocketPath: sock, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		if err := p.StartZDS(sock); err != nil {
			t.Fatal(err)
		}
		errCode(t, p.StartZDS(sock), FailedPrecondition, 0)
		if err := a.WaitForProxies(1, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := a.Add("uid-web", ZDSWorkload{Name: "web", Namespace: "shop", ServiceAccount: "web"}, ns); err != nil {
			t.Fatal(err)
		}
		if p.PodCount() != 1 || !strings.Contains(listening(t, nsName), ":15008") {
			t.Fatalf("pod from ZDS not captured (%d pods)", p.PodCount())
		}
		// A pod the proxy knows nothing of is refused back to the agent.
		errCode(t, a.Add("uid-stranger", ZDSWorkload{Name: "stranger", Namespace: "shop"}, ns), Aborted, 0)
		if err := a.Del("uid-web"); err != nil {
			t.Fatal(err)
		}
		if p.PodCount() != 0 {
			t.Fatalf("%d pods after DelWorkload", p.PodCount())
		}
		logs.waitFor(t, "zds: ")
	})
}

func asError(err error, e **Error) bool { return errors.As(err, e) }
