package ambient

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
)

const policies = `{"policies": [
  {"name": "deny-evil", "namespace": "app", "scope": "NAMESPACE", "action": "DENY",
   "rules": [{"clauses": [{"matches": [{"namespaces": [{"exact": "evil"}]}]}]}]},
  {"name": "allow-front", "namespace": "app", "scope": "WORKLOAD_SELECTOR", "action": "ALLOW",
   "rules": [{"clauses": [{"matches": [{"principals": [{"exact": "cluster.local/ns/front/sa/web"}]}]}]}]}
]}`

func req(id string, selected bool) Request {
	r := Request{
		WorkloadNamespace: "app",
		Src:               netip.MustParseAddrPort("198.18.0.1:40000"),
		Dst:               netip.MustParseAddrPort("198.18.0.2:9080"),
		SrcIdentity:       id,
	}
	if selected {
		r.WorkloadPolicies = []string{"app/allow-front"}
	}
	return r
}

func TestPolicyStoreDecides(t *testing.T) {
	s := NewPolicyStore()
	defer s.Close()
	if err := s.ReplaceJSON([]byte(policies)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		id       string
		selected bool
		allowed  bool
		reason   string
	}{
		{"spiffe://cluster.local/ns/front/sa/web", true, true, ""},
		{"spiffe://cluster.local/ns/other/sa/x", true, false, "allow policies exist, but none allowed"},
		{"spiffe://cluster.local/ns/evil/sa/x", false, false, "explicitly denied by app/deny-evil"},
		{"", false, true, ""},
	}
	for _, c := range cases {
		d, err := s.Check(req(c.id, c.selected))
		if err != nil {
			t.Fatalf("%q: %v", c.id, err)
		}
		if d.Allowed != c.allowed || d.Reason != c.reason {
			t.Errorf("%q: got %+v, want allowed=%v reason=%q", c.id, d, c.allowed, c.reason)
		}
	}
	d, err := s.Check(Request{WorkloadNamespace: "app",
		Src: netip.MustParseAddrPort("[2001:db8::1]:1"), Dst: netip.MustParseAddrPort("[2001:db8::2]:9080"),
		SrcIdentity: "spiffe://cluster.local/ns/front/sa/web", WorkloadPolicies: []string{"app/allow-front"}})
	if err != nil || !d.Allowed || d.Policy != "app/allow-front" {
		t.Fatalf("IPv6: %+v %v", d, err)
	}
}

func TestPolicyStoreRejectsBadInput(t *testing.T) {
	s := NewPolicyStore()
	defer s.Close()
	if err := s.ReplaceJSON([]byte(policies)); err != nil {
		t.Fatal(err)
	}
	var e *Error
	if err := s.ReplaceJSON([]byte(`{"policies": [{"name": "x", "bogus": 1}]}`)); !errors.As(err, &e) || e.Code != InvalidArgument {
		t.Fatalf("bad JSON: %v", err)
	}
	if s.Len() != 2 {
		t.Fatalf("store changed after a rejected update: %d policies", s.Len())
	}
	if _, err := s.Check(req("spiffe://not/istio", false)); !errors.As(err, &e) || e.Code != InvalidArgument {
		t.Fatalf("bad identity: %v", err)
	}
	if !s.Remove("app", "deny-evil") || s.Remove("app", "deny-evil") || s.Len() != 1 {
		t.Fatal("Remove")
	}
	s.Close()
	if _, err := s.Check(req("", false)); err == nil {
		t.Fatal("check on a closed store must fail")
	}
}

func TestPolicyStoreConcurrentChecks(t *testing.T) {
	s := NewPolicyStore()
	defer s.Close()
	if err := s.ReplaceJSON([]byte(policies)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				d, err := s.Check(req("spiffe://cluster.local/ns/evil/sa/x", false))
				if err != nil || d.Allowed {
					t.Errorf("iteration %d: %+v %v", i, d, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
