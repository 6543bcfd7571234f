package ambient

/*
#include <stdlib.h>
#include "ambient/ambient.h"
*/
import "C"

import "unsafe"

// XDSOptions says how a node proxy reaches istiod, as ztunnel's settings
// do (NodeProxyOptions.XDS): workloads and policies over delta xDS,
// certificates from the Istio CA (prefetched for this node's pods, renewed;
// the CA's roots become the trust bundles). Pods handed over are matched to
// this node's xDS workloads by namespace, name and service account, and open
// inbound connections are checked again after every policy push. Zero
// values keep libambient's defaults.
type XDSOptions struct {
	Address      string // istiod's xDS address, "host:port" (XDS_ADDRESS). Required.
	CAAddress    string // a separate CA (CA_ADDRESS); "": istiod is the CA
	RootsPEMFile string // TLS: roots istiod's certificate must chain to; "": plaintext
	ServerName   string // "": "istiod.istio-system.svc"
	TokenFile    string // bearer token file
	ClusterID    string // "": "Kubernetes"
	NodeName     string // this node (NODE_NAME). Required.
	PodName      string // the proxy's own pod (POD_NAME, POD_NAMESPACE)
	PodNamespace string
	InstanceIP   string            // the proxy's own IP (INSTANCE_IP); "": "1.1.1.1"
	Metadata     map[string]string // more node metadata (ISTIO_META_<KEY>)
}

func setXDSOptions(o *C.ambient_node_proxy_options, x *XDSOptions) error {
	if hasNUL(x.Address, x.CAAddress, x.RootsPEMFile, x.ServerName, x.TokenFile, x.ClusterID,
		x.NodeName, x.PodName, x.PodNamespace, x.InstanceIP) {
		return &Error{Code: InvalidArgument, Message: "xDS option contains a NUL byte"}
	}
	xo := C.ambient_xds_options_new()
	if xo == nil {
		return &Error{Code: ResourceExhausted, Message: "out of memory"}
	}
	defer C.ambient_xds_options_free(xo)
	var cs []*C.char
	defer func() {
		for _, p := range cs {
			C.free(unsafe.Pointer(p))
		}
	}()
	str := func(v string) *C.char {
		p := C.CString(v)
		cs = append(cs, p)
		return p
	}
	calls := []struct {
		set  bool
		call func() *C.ambient_error
	}{
		{true, func() *C.ambient_error { return C.ambient_xds_options_set_address(xo, str(x.Address)) }},
		{true, func() *C.ambient_error { return C.ambient_xds_options_set_ca_address(xo, str(x.CAAddress)) }},
		{true, func() *C.ambient_error { return C.ambient_xds_options_set_roots_pem_file(xo, str(x.RootsPEMFile)) }},
		{x.ServerName != "", func() *C.ambient_error { return C.ambient_xds_options_set_server_name(xo, str(x.ServerName)) }},
		{true, func() *C.ambient_error { return C.ambient_xds_options_set_token_file(xo, str(x.TokenFile)) }},
		{x.ClusterID != "", func() *C.ambient_error { return C.ambient_xds_options_set_cluster_id(xo, str(x.ClusterID)) }},
		{x.NodeName != "", func() *C.ambient_error { return C.ambient_xds_options_set_node_name(xo, str(x.NodeName)) }},
		{true, func() *C.ambient_error {
			return C.ambient_xds_options_set_pod(xo, str(x.PodName), str(x.PodNamespace))
		}},
		{x.InstanceIP != "", func() *C.ambient_error { return C.ambient_xds_options_set_instance_ip(xo, str(x.InstanceIP)) }},
	}
	for _, c := range calls {
		if !c.set {
			continue
		}
		if err := takeError(c.call()); err != nil {
			return err
		}
	}
	for k, v := range x.Metadata {
		if hasNUL(k, v) {
			return &Error{Code: InvalidArgument, Message: "xDS metadata contains a NUL byte"}
		}
		if err := takeError(C.ambient_xds_options_add_metadata(xo, str(k), str(v))); err != nil {
			return err
		}
	}
	return takeError(C.ambient_node_proxy_options_set_xds(o, xo))
}

// Ready reports ztunnel's readiness: the ZDS session (when started) is
// connected with its snapshot applied and no pod pending, and, with xDS,
// both xDS types were ACKed and every identity in use has a certificate.
// False when closed.
func (p *NodeProxy) Ready() bool {
	var ready bool
	_ = p.loop.do(func() {
		if p.ptr != nil {
			ready = C.ambient_node_proxy_ready(p.ptr) == 1
		}
	})
	return ready
}
