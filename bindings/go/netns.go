package ambient

/*
#include <stdlib.h>
#include "ambient/ambient.h"
void ambientGoSetAgentLog(ambient_zds_agent_options *opts, uintptr_t handle);
ambient_workload_info *ambientGoWorkload(const char *uid, const char *name, const char *ns,
                                         const char *service_account, const char *trust_domain,
                                         const char *const *addresses, size_t n_addresses,
                                         int hbone);
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"time"
	"unsafe"
)

// Netns is an open handle on a Linux network namespace; it keeps the
// namespace alive until Close.
type Netns struct {
	ptr *C.ambient_netns
}

func newNetns(p *C.ambient_netns) *Netns {
	n := &Netns{ptr: p}
	runtime.SetFinalizer(n, (*Netns).Close)
	return n
}

// OpenNetns opens a network namespace by name (under /var/run/netns, as `ip
// netns add` makes) or, when nameOrPath contains '/', by path. Errors:
// NotFound, InvalidArgument (a bad name, or not a network namespace),
// PermissionDenied.
func OpenNetns(nameOrPath string) (*Netns, error) {
	s := C.CString(nameOrPath)
	defer C.free(unsafe.Pointer(s))
	var out *C.ambient_netns
	if err := takeError(C.ambient_netns_open(s, &out)); err != nil {
		return nil, err
	}
	return newNetns(out), nil
}

// OpenNetnsPid opens /proc/pid/ns/net.
func OpenNetnsPid(pid int) (*Netns, error) {
	var out *C.ambient_netns
	if err := takeError(C.ambient_netns_open_pid(C.int(pid), &out)); err != nil {
		return nil, err
	}
	return newNetns(out), nil
}

// OpenNetnsFd makes a handle from a duplicate of fd (which stays the
// caller's). Errors: InvalidArgument when fd is no network namespace.
func OpenNetnsFd(fd int) (*Netns, error) {
	var out *C.ambient_netns
	if err := takeError(C.ambient_netns_open_fd(C.int(fd), &out)); err != nil {
		return nil, err
	}
	return newNetns(out), nil
}

// CurrentNetns opens the calling thread's own network namespace.
func CurrentNetns() (*Netns, error) {
	var out *C.ambient_netns
	if err := takeError(C.ambient_netns_open_current(&out)); err != nil {
		return nil, err
	}
	return newNetns(out), nil
}

// NewUnnamedNetns creates a new network namespace with no name (loopback
// only, down); the kernel removes it once nothing refers to it. Needs
// CAP_SYS_ADMIN.
func NewUnnamedNetns() (*Netns, error) {
	var out *C.ambient_netns
	if err := takeError(C.ambient_netns_new_unnamed(&out)); err != nil {
		return nil, err
	}
	return newNetns(out), nil
}

// Close releases the handle.
func (n *Netns) Close() {
	if n.ptr != nil {
		C.ambient_netns_free(n.ptr)
		n.ptr = nil
	}
	runtime.SetFinalizer(n, nil)
}

// Fd returns the handle's descriptor, lent: valid until Close (keep n
// reachable while using it: the finalizer closes an unreachable handle); do
// not close it. -1 when closed.
func (n *Netns) Fd() int {
	if n.ptr == nil {
		return -1
	}
	fd := int(C.ambient_netns_fd(n.ptr))
	runtime.KeepAlive(n)
	return fd
}

// ID returns the namespace identity (nsfs device and inode).
func (n *Netns) ID() (dev, ino uint64) {
	if n.ptr == nil {
		return 0, 0
	}
	var d, i C.uint64_t
	C.ambient_netns_id(n.ptr, &d, &i)
	runtime.KeepAlive(n)
	return uint64(d), uint64(i)
}

// Equal reports whether n and o refer to the same namespace.
func (n *Netns) Equal(o *Netns) bool {
	if n == nil || o == nil || n.ptr == nil || o.ptr == nil {
		return false
	}
	eq := C.ambient_netns_equal(n.ptr, o.ptr) == 1
	runtime.KeepAlive(n)
	runtime.KeepAlive(o)
	return eq
}

// LoopbackUp sets the namespace's loopback device up.
func (n *Netns) LoopbackUp() error {
	if n.ptr == nil {
		return closedError("netns")
	}
	err := takeError(C.ambient_netns_loopback_up(n.ptr))
	runtime.KeepAlive(n)
	return err
}

// ZDSAgentOptions configures a ZDS agent. Zero values take the defaults
// (socket /var/run/ztunnel/ztunnel.sock, 5 s per message and ack).
type ZDSAgentOptions struct {
	SocketPath string
	Timeout    time.Duration
	// Log, when set, receives the agent's log lines (component "zds"). It is
	// called from the agent's thread and from callers of its methods, at
	// times with the agent's lock held: it must not call the agent.
	Log LogFunc
}

// ZDSAgent is the node agent end of istio's ZDS protocol (istio-cni's
// role): it listens on a unix socket and hands pods' network namespaces to
// the node proxies that connect. Safe for concurrent use (except Close).
type ZDSAgent struct {
	ptr *C.ambient_zds_agent
	log cgo.Handle // 0 when no log sink
}

// NewZDSAgent listens on the options' socket path (replacing a stale socket
// file) and starts accepting proxies. Errors: InvalidArgument (path over
// 107 bytes, zero timeout), AlreadyExists (a non-socket file is in the way),
// NotFound (directory missing), PermissionDenied.
func NewZDSAgent(opts ZDSAgentOptions) (*ZDSAgent, error) {
	o := C.ambient_zds_agent_options_new()
	if o == nil {
		return nil, &Error{Code: ResourceExhausted, Message: "out of memory"}
	}
	defer C.ambient_zds_agent_options_free(o)
	if opts.SocketPath != "" {
		s := C.CString(opts.SocketPath)
		err := takeError(C.ambient_zds_agent_options_set_socket_path(o, s))
		C.free(unsafe.Pointer(s))
		if err != nil {
			return nil, err
		}
	}
	if opts.Timeout != 0 {
		ms := opts.Timeout.Milliseconds()
		if ms <= 0 || ms > 0xffffffff {
			return nil, &Error{Code: InvalidArgument, Message: "ZDS agent timeout out of range"}
		}
		if err := takeError(C.ambient_zds_agent_options_set_timeout(o, C.uint32_t(ms))); err != nil {
			return nil, err
		}
	}
	var h cgo.Handle
	if opts.Log != nil {
		h = cgo.NewHandle(opts.Log)
		C.ambientGoSetAgentLog(o, C.uintptr_t(h))
	}
	var out *C.ambient_zds_agent
	if err := takeError(C.ambient_zds_agent_new(o, &out)); err != nil {
		if h != 0 {
			h.Delete()
		}
		return nil, err
	}
	a := &ZDSAgent{ptr: out, log: h}
	runtime.SetFinalizer(a, (*ZDSAgent).Close)
	return a, nil
}

// Close stops the agent, closes every connection and removes the socket
// file.
func (a *ZDSAgent) Close() {
	if a.ptr != nil {
		C.ambient_zds_agent_free(a.ptr)
		a.ptr = nil
	}
	if a.log != 0 {
		a.log.Delete() // after the agent is gone: no more calls
		a.log = 0
	}
	runtime.SetFinalizer(a, nil)
}

func optCString(s string) *C.char {
	if s == "" {
		return nil
	}
	return C.CString(s)
}

// ZDSWorkload names a pod handed to proxies.
type ZDSWorkload struct {
	Name, Namespace, ServiceAccount string
}

// Add records pod uid with (a duplicate of) netns and sends it to the
// newest proxy, waiting for its ack. Errors: InvalidArgument; Unavailable
// when no proxy is connected (the pod is still recorded and goes out with
// the next snapshot); Aborted with the proxy's reason when it refused.
func (a *ZDSAgent) Add(uid string, w ZDSWorkload, netns *Netns) error {
	if a.ptr == nil {
		return closedError("ZDS agent")
	}
	if netns == nil || netns.ptr == nil {
		return &Error{Code: InvalidArgument, Message: "netns is nil or closed"}
	}
	cu := C.CString(uid)
	cn, cns, csa := optCString(w.Name), optCString(w.Namespace), optCString(w.ServiceAccount)
	defer func() {
		for _, p := range []*C.char{cu, cn, cns, csa} {
			C.free(unsafe.Pointer(p))
		}
	}()
	pod := C.ambientGoWorkload(cu, cn, cns, csa, nil, nil, 0, 1)
	if pod == nil {
		return &Error{Code: ResourceExhausted, Message: "out of memory"}
	}
	defer C.ambient_workload_info_free(pod)
	err := takeError(C.ambient_zds_agent_add(a.ptr, pod, netns.ptr))
	runtime.KeepAlive(a)
	runtime.KeepAlive(netns)
	return err
}

// Keep records a pod whose netns cannot be opened (sent as KeepWorkload in
// snapshots).
func (a *ZDSAgent) Keep(uid string) error {
	if a.ptr == nil {
		return closedError("ZDS agent")
	}
	cu := C.CString(uid)
	defer C.free(unsafe.Pointer(cu))
	err := takeError(C.ambient_zds_agent_keep(a.ptr, cu))
	runtime.KeepAlive(a)
	return err
}

// Del forgets pod uid and tells every connected proxy, waiting for acks.
func (a *ZDSAgent) Del(uid string) error {
	if a.ptr == nil {
		return closedError("ZDS agent")
	}
	cu := C.CString(uid)
	defer C.free(unsafe.Pointer(cu))
	err := takeError(C.ambient_zds_agent_del(a.ptr, cu))
	runtime.KeepAlive(a)
	return err
}

// ProxyCount returns how many proxies are connected and past their snapshot.
func (a *ZDSAgent) ProxyCount() int {
	if a.ptr == nil {
		return 0
	}
	n := int(C.ambient_zds_agent_proxy_count(a.ptr))
	runtime.KeepAlive(a)
	return n
}

// WaitForProxies blocks until at least n proxies are connected and past
// their snapshot. Errors: DeadlineExceeded after timeout.
func (a *ZDSAgent) WaitForProxies(n int, timeout time.Duration) error {
	if a.ptr == nil {
		return closedError("ZDS agent")
	}
	ms := timeout.Milliseconds()
	if ms < 0 {
		ms = 0
	} else if ms > 0xffffffff {
		ms = 0xffffffff
	}
	err := takeError(C.ambient_zds_agent_wait_for_proxies(a.ptr, C.size_t(n), C.uint32_t(ms)))
	runtime.KeepAlive(a)
	return err
}
