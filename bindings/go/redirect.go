package ambient

/*
#include <stdlib.h>
#include "ambient/ambient.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// RedirectBackend selects how redirect rules are rendered and applied.
type RedirectBackend int

// The backends.
const (
	RedirectIptables RedirectBackend = C.AMBIENT_REDIRECT_IPTABLES // iptables-restore payloads
	RedirectNftables RedirectBackend = C.AMBIENT_REDIRECT_NFTABLES // native nftables
)

// String names the backend ("iptables", "nftables").
func (b RedirectBackend) String() string {
	switch b {
	case RedirectIptables:
		return "iptables"
	case RedirectNftables:
		return "nftables"
	}
	return fmt.Sprintf("RedirectBackend(%d)", int(b))
}

// RedirectConfig holds everything istio-cni's traffic redirection rules
// depend on. It starts with istio-cni's production defaults (iptables,
// in-pod rules, IPv4 only, DNS capture on). Render, Apply, Check and Delete
// may run concurrently; setters need exclusive use. A failed setter leaves
// the config as it was.
type RedirectConfig struct {
	ptr *C.ambient_redirect_config
}

// NewRedirectConfig returns a config with istio-cni's defaults.
func NewRedirectConfig() *RedirectConfig {
	c := &RedirectConfig{ptr: C.ambient_redirect_config_new()}
	if c.ptr == nil {
		panic("ambient: out of memory")
	}
	runtime.SetFinalizer(c, (*RedirectConfig).Close)
	return c
}

// Close releases the config.
func (c *RedirectConfig) Close() {
	if c.ptr != nil {
		C.ambient_redirect_config_free(c.ptr)
		c.ptr = nil
	}
	runtime.SetFinalizer(c, nil)
}

func (c *RedirectConfig) closed() error { return closedError("redirect config") }

func cbool(on bool) C.int {
	if on {
		return 1
	}
	return 0
}

// ParseFlags replaces the config with the defaults changed by the
// `ambientctl rules` flags in args (--backend, --host, --ipv6, --dns-capture,
// --pod-dns-capture, --bypass-inbound, --reroute-interface, --probe-snat-v4,
// --probe-snat-v6, --kubelet-uid). Errors: InvalidArgument naming the bad
// argument; the config is then unchanged.
func (c *RedirectConfig) ParseFlags(args []string) error {
	if c.ptr == nil {
		return c.closed()
	}
	argv := (**C.char)(C.calloc(C.size_t(len(args)+1), C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(argv))
	av := unsafe.Slice(argv, len(args)+1)
	for i, a := range args {
		av[i] = C.CString(a)
		defer C.free(unsafe.Pointer(av[i]))
	}
	err := takeError(C.ambient_redirect_config_parse_flags(c.ptr, C.int(len(args)), argv))
	runtime.KeepAlive(c)
	return err
}

// SetBackend selects iptables or nftables.
func (c *RedirectConfig) SetBackend(b RedirectBackend) error {
	if c.ptr == nil {
		return c.closed()
	}
	if b != RedirectIptables && b != RedirectNftables {
		// Checked here: the C++ side reads the enum parameter as its type,
		// and an out-of-range value there is undefined behaviour.
		return &Error{Code: InvalidArgument, Message: fmt.Sprintf("unknown redirect backend %d", int(b))}
	}
	return takeError(C.ambient_redirect_config_set_backend(c.ptr, C.ambient_redirect_backend(b)))
}

// SetHost selects node-level probe rules (true) or in-pod rules (false).
func (c *RedirectConfig) SetHost(on bool) error {
	if c.ptr == nil {
		return c.closed()
	}
	return takeError(C.ambient_redirect_config_set_host(c.ptr, cbool(on)))
}

// SetIPv6 turns the IPv6 rules and policy routing on or off.
func (c *RedirectConfig) SetIPv6(on bool) error {
	if c.ptr == nil {
		return c.closed()
	}
	return takeError(C.ambient_redirect_config_set_ipv6(c.ptr, cbool(on)))
}

// SetDNSCapture sets mesh-wide DNS capture.
func (c *RedirectConfig) SetDNSCapture(on bool) error {
	if c.ptr == nil {
		return c.closed()
	}
	return takeError(C.ambient_redirect_config_set_dns_capture(c.ptr, cbool(on)))
}

// SetPodDNSCapture sets the per-pod DNS capture override; nil unsets it so
// the mesh-wide value applies.
func (c *RedirectConfig) SetPodDNSCapture(on *bool) error {
	if c.ptr == nil {
		return c.closed()
	}
	v := C.int(-1)
	if on != nil {
		v = cbool(*on)
	}
	return takeError(C.ambient_redirect_config_set_pod_dns_capture(c.ptr, v))
}

// SetBypassInbound turns ingress mode (no inbound capture) on or off.
func (c *RedirectConfig) SetBypassInbound(on bool) error {
	if c.ptr == nil {
		return c.closed()
	}
	return takeError(C.ambient_redirect_config_set_bypass_inbound(c.ptr, cbool(on)))
}

// AddRerouteInterface adds an interface whose inbound TCP is redirected as
// outbound. Errors: InvalidArgument for an invalid name or more than 64.
func (c *RedirectConfig) AddRerouteInterface(name string) error {
	if c.ptr == nil {
		return c.closed()
	}
	s := C.CString(name)
	defer C.free(unsafe.Pointer(s))
	return takeError(C.ambient_redirect_config_add_reroute_interface(c.ptr, s))
}

// SetProbeSNATv4 sets the IPv4 address kubelet probes are SNATed to.
func (c *RedirectConfig) SetProbeSNATv4(addr string) error {
	if c.ptr == nil {
		return c.closed()
	}
	s := C.CString(addr)
	defer C.free(unsafe.Pointer(s))
	return takeError(C.ambient_redirect_config_set_probe_snat_v4(c.ptr, s))
}

// SetProbeSNATv6 sets the IPv6 address kubelet probes are SNATed to.
func (c *RedirectConfig) SetProbeSNATv6(addr string) error {
	if c.ptr == nil {
		return c.closed()
	}
	s := C.CString(addr)
	defer C.free(unsafe.Pointer(s))
	return takeError(C.ambient_redirect_config_set_probe_snat_v6(c.ptr, s))
}

// SetKubeletUID sets the kubelet UID matched by the nftables host rule.
func (c *RedirectConfig) SetKubeletUID(uid uint32) error {
	if c.ptr == nil {
		return c.closed()
	}
	return takeError(C.ambient_redirect_config_set_kubelet_uid(c.ptr, C.uint32_t(uid)))
}

// Render returns the rules as istio-cni would feed them to iptables-restore
// (IPv4 then IPv6) or nft. Nothing on the system is touched.
func (c *RedirectConfig) Render() (string, error) {
	if c.ptr == nil {
		return "", c.closed()
	}
	// The text is copied into our buffer: ask for its length, then fetch it.
	var n C.size_t
	err := takeError(C.ambient_redirect_render(c.ptr, nil, 0, &n))
	if err != nil {
		runtime.KeepAlive(c)
		return "", err
	}
	buf := make([]byte, int(n)+1)
	err = takeError(C.ambient_redirect_render(c.ptr, (*C.char)(unsafe.Pointer(&buf[0])),
		C.size_t(len(buf)), &n))
	runtime.KeepAlive(c)
	if err != nil {
		return "", err
	}
	if int(n) >= len(buf) {
		return "", &Error{Code: Internal, Message: "rendered rules changed length between calls"}
	}
	return string(buf[:n]), nil
}

// nsArg checks a namespace handle argument.
func nsArg(ns *Netns) error {
	if ns == nil || ns.ptr == nil {
		return &Error{Code: InvalidArgument, Message: "network namespace is nil or closed"}
	}
	return nil
}

// Apply installs the rules (and, in-pod, the fwmark policy routing) in the
// network namespace ns (OpenNetns opens one by name, path or descriptor).
// All or nothing. Needs root. Errors: InvalidArgument (nil or closed ns),
// PermissionDenied, FailedPrecondition (rules refused).
func (c *RedirectConfig) Apply(ns *Netns) error {
	if c.ptr == nil {
		return c.closed()
	}
	if err := nsArg(ns); err != nil {
		return err
	}
	err := takeError(C.ambient_redirect_apply(c.ptr, ns.ptr))
	runtime.KeepAlive(c)
	runtime.KeepAlive(ns)
	return err
}

func takeDrift(d *C.ambient_redirect_drift) []string {
	defer C.ambient_redirect_drift_free(d)
	n := int(C.ambient_redirect_drift_count(d))
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, C.GoString(C.ambient_redirect_drift_get0(d, C.size_t(i))))
	}
	return out
}

// Check compares ns with the expected rules and returns the differences,
// one line each (empty when there is no drift). Nothing is changed.
func (c *RedirectConfig) Check(ns *Netns) ([]string, error) {
	if c.ptr == nil {
		return nil, c.closed()
	}
	if err := nsArg(ns); err != nil {
		return nil, err
	}
	var d *C.ambient_redirect_drift
	err := takeError(C.ambient_redirect_check(c.ptr, ns.ptr, &d))
	runtime.KeepAlive(c)
	runtime.KeepAlive(ns)
	if err != nil {
		return nil, err
	}
	return takeDrift(d), nil
}

// Delete removes from ns exactly what Apply installs for this backend;
// deleting what is not there is not an error.
func (c *RedirectConfig) Delete(ns *Netns) error {
	if c.ptr == nil {
		return c.closed()
	}
	if err := nsArg(ns); err != nil {
		return err
	}
	err := takeError(C.ambient_redirect_delete(c.ptr, ns.ptr))
	runtime.KeepAlive(c)
	runtime.KeepAlive(ns)
	return err
}

// ProbeMember is one member of a host probe set: a pod address (as
// inet_ntop spells it) and the UID of the pod it belongs to ("" when the
// member has no comment).
type ProbeMember struct {
	Address string
	PodUID  string
}

// Host probe sets. With host rules (SetHost(true)) kubelet's probes are
// SNATed only when they go to an enrolled pod: one whose address is a
// member of a probe set (the ipsets istio-inpod-probes-v4/-v6 for iptables,
// the nftables sets of those names in table inet istio-ambient-nat). Apply
// with a host config creates the sets; the methods below change and read
// their members in ns (the node's namespace, e.g.
// OpenNetns("/proc/1/ns/net")) for the config's backend. Needs root.

// ProbeAdd adds the pod address addr (IPv4 or IPv6; IPv4-mapped IPv6 counts
// as IPv4) with the pod UID podUID to the probe set of its family; a member
// already there gets the new UID. Errors: InvalidArgument (bad address, IPv6
// with IPv6 off, an empty or malformed UID), NotFound (the set does not
// exist: the host rules were not applied), PermissionDenied. On error the
// set is unchanged.
func (c *RedirectConfig) ProbeAdd(ns *Netns, addr, podUID string) error {
	if c.ptr == nil {
		return c.closed()
	}
	if err := nsArg(ns); err != nil {
		return err
	}
	a, u := C.CString(addr), C.CString(podUID)
	defer C.free(unsafe.Pointer(a))
	defer C.free(unsafe.Pointer(u))
	err := takeError(C.ambient_redirect_probe_add(c.ptr, ns.ptr, a, u))
	runtime.KeepAlive(c)
	runtime.KeepAlive(ns)
	return err
}

// ProbeRemove removes addr from its probe set when its UID is podUID (any
// UID when podUID is ""). An absent address is not an error. Errors: as
// ProbeAdd, plus FailedPrecondition naming the other UID when the address
// belongs to another pod (nothing is removed).
func (c *RedirectConfig) ProbeRemove(ns *Netns, addr, podUID string) error {
	if c.ptr == nil {
		return c.closed()
	}
	if err := nsArg(ns); err != nil {
		return err
	}
	a, u := C.CString(addr), C.CString(podUID)
	defer C.free(unsafe.Pointer(a))
	defer C.free(unsafe.Pointer(u))
	err := takeError(C.ambient_redirect_probe_remove(c.ptr, ns.ptr, a, u))
	runtime.KeepAlive(c)
	runtime.KeepAlive(ns)
	return err
}

func takeProbes(p *C.ambient_redirect_probes) []ProbeMember {
	defer C.ambient_redirect_probes_free(p)
	n := int(C.ambient_redirect_probes_count(p))
	out := make([]ProbeMember, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, ProbeMember{
			Address: C.GoString(C.ambient_redirect_probes_get0_address(p, C.size_t(i))),
			PodUID:  C.GoString(C.ambient_redirect_probes_get0_pod_uid(p, C.size_t(i))),
		})
	}
	return out
}

// ProbeList returns the members of the IPv4 probe set and, when the config
// has IPv6 on, of the IPv6 set. Errors: NotFound (a set does not exist),
// PermissionDenied.
func (c *RedirectConfig) ProbeList(ns *Netns) ([]ProbeMember, error) {
	if c.ptr == nil {
		return nil, c.closed()
	}
	if err := nsArg(ns); err != nil {
		return nil, err
	}
	var p *C.ambient_redirect_probes
	err := takeError(C.ambient_redirect_probe_list(c.ptr, ns.ptr, &p))
	runtime.KeepAlive(c)
	runtime.KeepAlive(ns)
	if err != nil {
		return nil, err
	}
	return takeProbes(p), nil
}
