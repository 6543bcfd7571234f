package ambient

/*
#include <stdlib.h>
#include <stdint.h>
#include "ambient/ambient.h"
void ambientGoSetNodeProxyLog(ambient_node_proxy_options *opts, uintptr_t handle);
ambient_workload_info *ambientGoWorkload(const char *uid, const char *name, const char *ns,
                                         const char *service_account, const char *trust_domain,
                                         const char *const *addresses, size_t n_addresses,
                                         int hbone);
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"unsafe"
)

// NodeProxyWorkload is a workload of the mesh as the node proxy knows it.
// Its identity is spiffe://TrustDomain/ns/Namespace/sa/ServiceAccount.
type NodeProxyWorkload struct {
	UID, Name, Namespace string
	ServiceAccount       string   // "" means "default"
	TrustDomain          string   // "" means "cluster.local"
	Addresses            []string // numeric IPs
	HBONE                bool     // speaks HBONE (else plain TCP to it)
}

// NodeProxySVID is the X509-SVID (PEM chain, leaf first) and key (PEM) a
// captured pod uses.
type NodeProxySVID struct {
	ChainPEM, KeyPEM []byte
}

// NodeProxyOptions is what a node proxy knows of the mesh. Empty options
// mean no workloads, no bundles, no SVIDs and no policies (all allowed).
type NodeProxyOptions struct {
	Workloads    []NodeProxyWorkload
	TrustBundles map[string][]byte        // trust domain -> PEM roots
	SVIDs        map[string]NodeProxySVID // pod uid -> its SVID
	PoliciesJSON []byte                   // Istio Authorizations, see PolicyStore
	// DNS switches the DNS proxy on: every captured pod also gets 15053
	// (UDP and TCP), answering the mesh's names and forwarding the rest to
	// DNSUpstreams, comma-separated "ip:port" (or bare IPs, port 53); ""
	// means the nameservers of this host's /etc/resolv.conf.
	DNS          bool
	DNSUpstreams string
	// Log, when set, gets the access log (component "access") and other
	// lines ("node-proxy" and "zds"), all on the loop's goroutine.
	Log LogFunc
	// XDS, when set, takes the mesh and the pods' certificates from istiod
	// (see XDSOptions); Workloads, SVIDs and PoliciesJSON must then be empty.
	XDS *XDSOptions
}

// NodeProxy is ztunnel's role in in-pod mode, on a Loop: for each captured
// pod it opens the in-pod listeners (15001, 15006, 15008) in the pod's
// namespace, carries the pod's TCP over HBONE, terminates HBONE with the
// pod's SVID, authorizes and connects to the app keeping the client's IP.
// Pods come from AddPod or from a node agent over ZDS (StartZDS). Needs
// CAP_NET_ADMIN and CAP_SYS_ADMIN to capture pods.
type NodeProxy struct {
	loop *Loop
	ptr  *C.ambient_node_proxy
	log  cgo.Handle
}

func setNodeProxyOptions(o *C.ambient_node_proxy_options, opts *NodeProxyOptions) error {
	for _, w := range opts.Workloads {
		if hasNUL(w.UID, w.Name, w.Namespace, w.ServiceAccount, w.TrustDomain) || hasNUL(w.Addresses...) {
			return &Error{Code: InvalidArgument, Message: "workload field contains a NUL byte"}
		}
		cu, cn, cns := C.CString(w.UID), C.CString(w.Name), C.CString(w.Namespace)
		csa, ctd := optCString(w.ServiceAccount), optCString(w.TrustDomain)
		addrs := newCStrings(w.Addresses)
		hb := C.int(0)
		if w.HBONE {
			hb = 1
		}
		info := C.ambientGoWorkload(cu, cn, cns, csa, ctd, addrs.arr, C.size_t(addrs.n), hb)
		var err error
		if info == nil {
			err = &Error{Code: ResourceExhausted, Message: "out of memory"}
		} else {
			err = takeError(C.ambient_node_proxy_options_add_workload(o, info))
			C.ambient_workload_info_free(info)
		}
		addrs.free()
		for _, p := range []*C.char{cu, cn, cns, csa, ctd} {
			C.free(unsafe.Pointer(p))
		}
		if err != nil {
			return err
		}
	}
	for td, pem := range opts.TrustBundles {
		if hasNUL(td) {
			return &Error{Code: InvalidArgument, Message: "trust domain contains a NUL byte"}
		}
		ctd := C.CString(td)
		p, n := cbytes(pem)
		err := takeError(C.ambient_node_proxy_options_add_trust_bundle_pem(o, ctd, p, n))
		C.free(unsafe.Pointer(ctd))
		if err != nil {
			return err
		}
	}
	for uid, svid := range opts.SVIDs {
		if hasNUL(uid) {
			return &Error{Code: InvalidArgument, Message: "uid contains a NUL byte"}
		}
		cu := C.CString(uid)
		cp, cn := cbytes(svid.ChainPEM)
		kp, kn := cbytes(svid.KeyPEM)
		err := takeError(C.ambient_node_proxy_options_set_svid_pem(o, cu, cp, cn, kp, kn))
		C.free(unsafe.Pointer(cu))
		if err != nil {
			return err
		}
	}
	if opts.PoliciesJSON != nil {
		p, n := cbytes(opts.PoliciesJSON)
		if err := takeError(C.ambient_node_proxy_options_set_policies_json(o, p, n)); err != nil {
			return err
		}
	}
	if opts.XDS != nil {
		if err := setXDSOptions(o, opts.XDS); err != nil {
			return err
		}
	}
	if opts.DNS {
		if hasNUL(opts.DNSUpstreams) {
			return &Error{Code: InvalidArgument, Message: "DNS upstreams contain a NUL byte"}
		}
		cs := C.CString(opts.DNSUpstreams)
		err := takeError(C.ambient_node_proxy_options_set_dns(o, cs))
		C.free(unsafe.Pointer(cs))
		if err != nil {
			return err
		}
	}
	return nil
}

// NewNodeProxy makes a node proxy with no pods. Errors: InvalidArgument
// naming the bad workload, bundle, SVID or policy.
func (l *Loop) NewNodeProxy(opts NodeProxyOptions) (*NodeProxy, error) {
	o := C.ambient_node_proxy_options_new()
	if o == nil {
		return nil, &Error{Code: ResourceExhausted, Message: "out of memory"}
	}
	defer C.ambient_node_proxy_options_free(o)
	if err := setNodeProxyOptions(o, &opts); err != nil {
		return nil, err
	}
	p := &NodeProxy{loop: l}
	if opts.Log != nil {
		p.log = cgo.NewHandle(opts.Log)
		C.ambientGoSetNodeProxyLog(o, C.uintptr_t(p.log))
	}
	var err error
	if derr := l.do(func() {
		err = takeError(C.ambient_node_proxy_new(l.ptr, o, &p.ptr))
		if err == nil {
			l.nodeProxies[p] = struct{}{}
		}
	}); derr != nil {
		err = derr
	}
	if err != nil {
		if p.log != 0 {
			p.log.Delete()
		}
		return nil, err
	}
	return p, nil
}

// AddPod captures pod uid in netns (a duplicate of its descriptor is
// kept). The workload is found by uid, else by namespace/name (either may
// be empty). Errors: InvalidArgument, NotFound (unknown workload, no SVID),
// FailedPrecondition (the SVID is not the workload's identity),
// AlreadyExists (a port is taken in the pod), PermissionDenied.
func (p *NodeProxy) AddPod(uid, name, namespace string, netns *Netns) error {
	if netns == nil || netns.ptr == nil {
		return &Error{Code: InvalidArgument, Message: "netns is nil or closed"}
	}
	if hasNUL(uid, name, namespace) {
		return &Error{Code: InvalidArgument, Message: "argument contains a NUL byte"}
	}
	cu, cn, cns := C.CString(uid), optCString(name), optCString(namespace)
	defer func() {
		for _, s := range []*C.char{cu, cn, cns} {
			C.free(unsafe.Pointer(s))
		}
	}()
	var err error
	if derr := p.loop.do(func() {
		if p.ptr == nil {
			err = closedError("node proxy")
			return
		}
		info := C.ambientGoWorkload(cu, cn, cns, nil, nil, nil, 0, 1)
		if info == nil {
			err = &Error{Code: ResourceExhausted, Message: "out of memory"}
			return
		}
		err = takeError(C.ambient_node_proxy_add_pod(p.ptr, info, netns.ptr))
		C.ambient_workload_info_free(info)
	}); derr != nil {
		err = derr
	}
	runtime.KeepAlive(netns)
	return err
}

// RemovePod releases pod uid (its listeners close, its HBONE connections
// are aborted) and reports whether it was captured.
func (p *NodeProxy) RemovePod(uid string) (bool, error) {
	if hasNUL(uid) {
		return false, &Error{Code: InvalidArgument, Message: "uid contains a NUL byte"}
	}
	cu := C.CString(uid)
	defer C.free(unsafe.Pointer(cu))
	var rc C.int
	var err error
	if derr := p.loop.do(func() {
		if p.ptr == nil {
			err = closedError("node proxy")
			return
		}
		rc = C.ambient_node_proxy_remove_pod(p.ptr, cu)
		err = codeError(rc)
	}); derr != nil {
		err = derr
	}
	return err == nil && rc == 1, err
}

// PodCount returns how many pods are captured.
func (p *NodeProxy) PodCount() int {
	n := 0
	_ = p.loop.do(func() {
		if p.ptr != nil {
			n = int(C.ambient_node_proxy_pod_count(p.ptr))
		}
	})
	return n
}

// DNSMetrics returns the DNS proxy's istio_dns_* counters (Prometheus
// text); "" when the options did not switch DNS on or the proxy is closed.
func (p *NodeProxy) DNSMetrics() string {
	var out string
	_ = p.loop.do(func() {
		if p.ptr == nil {
			return
		}
		out = copiedText(func(buf *C.char, size C.size_t) C.size_t {
			return C.ambient_node_proxy_dns_metrics(p.ptr, buf, size)
		})
	})
	return out
}

// StartZDS connects to the node agent's ZDS socket (and keeps
// reconnecting) on the proxy's loop, with no thread of its own; pods the
// agent adds or deletes are captured or released on the loop. Errors: InvalidArgument (path too long
// for a unix socket), FailedPrecondition (already started).
func (p *NodeProxy) StartZDS(socketPath string) error {
	if hasNUL(socketPath) {
		return &Error{Code: InvalidArgument, Message: "socket path contains a NUL byte"}
	}
	cs := C.CString(socketPath)
	defer C.free(unsafe.Pointer(cs))
	var err error
	if derr := p.loop.do(func() {
		if p.ptr == nil {
			err = closedError("node proxy")
			return
		}
		err = takeError(C.ambient_node_proxy_start_zds(p.ptr, cs))
	}); derr != nil {
		err = derr
	}
	return err
}

// Close stops ZDS (pods are not reported to the agent), releases every pod
// and frees the proxy.
func (p *NodeProxy) Close() { _ = p.loop.do(p.free) }

// free runs on the loop thread.
func (p *NodeProxy) free() {
	if p.ptr == nil {
		return
	}
	C.ambient_node_proxy_free(p.ptr)
	p.ptr = nil
	delete(p.loop.nodeProxies, p)
	if p.log != 0 {
		p.log.Delete() // the proxy (and its ZDS connection) is gone
		p.log = 0
	}
}
