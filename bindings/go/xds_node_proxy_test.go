package ambient

import (
	"testing"
	"time"
)

// A node proxy fed by the fake istiod: pod a (sa-a) on node-1, pod c (sa-c)
// on node-2; the proxy is node-1.
func TestNodeProxyFromXDSBecomesReady(t *testing.T) {
	const addressType = "type.googleapis.com/istio.workload.Address"
	pod := func(name, sa, node, ip string) string {
		return `["Kubernetes//Pod/ns1/` + name + `", "v1", "workload.Address", {"workload": {"uid": "Kubernetes//Pod/ns1/` +
			name + `", "name": "` + name + `", "namespace": "ns1", "addresses": ["` + ip +
			`"], "tunnelProtocol": "HBONE", "serviceAccount": "` + sa + `", "node": "` + node + `"}}]`
	}
	set := `{"set_messages": {"type": "` + addressType + `", "any_type": "` + addressType +
		`", "resources": [` + pod("a", "sa-a", "node-1", "xhIACg==") + `, ` +
		pod("c", "sa-c", "node-2", "xhIADA==") + `]}}`
	addr, reqs, _ := fakeIstiod(t, []string{set})
	loop, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()

	if _, err := loop.NewNodeProxy(NodeProxyOptions{XDS: &XDSOptions{Address: addr}}); err == nil {
		t.Fatal("xDS options without a node name were accepted")
	} else if e, ok := err.(*Error); !ok || e.Code != InvalidArgument || e.Message != "xDS options: no node name set" {
		t.Fatalf("no node name: %v", err)
	}

	p, err := loop.NewNodeProxy(NodeProxyOptions{XDS: &XDSOptions{Address: addr, NodeName: "node-1",
		ClusterID: "cluster-go", Metadata: map[string]string{"OWNER": "go"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !p.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Ready needed the prefetched certificate of node-1's pod, and only that.
	select {
	case r := <-reqs:
		if r["identity"] != "spiffe://cluster.local/ns/ns1/sa/sa-a" || r["clusterid"] != "cluster-go" {
			t.Errorf("CA request %v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the CA saw no request")
	}
	select {
	case r := <-reqs:
		t.Errorf("a second CA request: %v", r)
	case <-time.After(200 * time.Millisecond):
	}
}
