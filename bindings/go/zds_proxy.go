package ambient

/*
#include <stdlib.h>
#include <stdint.h>
#include "ambient/ambient.h"
void ambientGoSetProxyCallbacks(ambient_zds_proxy_options *opts, uintptr_t handle);
void ambientGoSetProxyLog(ambient_zds_proxy_options *opts, uintptr_t handle);
*/
import "C"

import (
	"fmt"
	"runtime"
	"runtime/cgo"
	"time"
	"unsafe"
)

// ZDSEvent is what a ZDS proxy reports besides pods.
type ZDSEvent int

// The events.
const (
	// ZDSSnapshotComplete: the agent's snapshot was applied (ready).
	ZDSSnapshotComplete ZDSEvent = C.AMBIENT_ZDS_SNAPSHOT_COMPLETE
	// ZDSDisconnected: the connection to the agent ended (not ready).
	ZDSDisconnected ZDSEvent = C.AMBIENT_ZDS_DISCONNECTED
)

func (e ZDSEvent) String() string {
	switch e {
	case ZDSSnapshotComplete:
		return "snapshot-complete"
	case ZDSDisconnected:
		return "disconnected"
	}
	return fmt.Sprintf("ZDSEvent(%d)", int(e))
}

// ZDSProxyOptions configures a ZDS proxy. Zero values take the defaults
// (socket /var/run/ztunnel/ztunnel.sock, reconnect backoff 10 ms doubling
// to 15 s, refused pods offered again every 5 s).
//
// The callbacks are called from the proxy's own thread, one at a time; they
// must not call Stop or Close on the proxy. A panic in Add refuses the pod;
// in Remove, Event or Log it is swallowed.
type ZDSProxyOptions struct {
	SocketPath string
	// InitialBackoff and MaxBackoff bound the reconnect backoff (both or
	// neither; 0 < InitialBackoff <= MaxBackoff).
	InitialBackoff, MaxBackoff time.Duration
	// RetryInterval is how often a refused pod is offered to Add again;
	// negative disables retries (a refused pod is forgotten).
	RetryInterval time.Duration
	// Add serves pod uid in netns, which it now owns (Close it when done
	// with the pod). A non-nil error refuses the pod: the agent gets its
	// text, and the pod is offered again every RetryInterval. Required.
	Add func(uid string, w ZDSWorkload, netns *Netns) error
	// Remove stops serving pod uid. Required.
	Remove func(uid string)
	// Event, when set, learns of snapshots applied and disconnections.
	Event func(e ZDSEvent, detail string)
	// Log, when set, receives the proxy's log lines (component "zds").
	Log LogFunc
}

type zdsProxyCallbacks struct {
	add    func(uid string, w ZDSWorkload, netns *Netns) error
	remove func(uid string)
	event  func(e ZDSEvent, detail string)
}

// ZDSProxy is the node proxy end of istio's ZDS protocol (ztunnel's role):
// it connects to the agent and receives pods with their network namespaces.
type ZDSProxy struct {
	ptr       *C.ambient_zds_proxy
	callbacks cgo.Handle
	log       cgo.Handle // 0 when no log sink
}

//export ambientGoZDSAdd
func ambientGoZDSAdd(user unsafe.Pointer, uid *C.char, w *C.ambient_zds_workload, netns *C.ambient_netns, reason *C.char, reasonCap C.size_t) (rc C.int) {
	ns := newNetns(netns) // ours from here on, whatever happens
	cb, ok := cgo.Handle(uintptr(user)).Value().(*zdsProxyCallbacks)
	if !ok {
		ns.Close()
		return 1
	}
	wl := ZDSWorkload{
		Name:           C.GoString(C.ambient_zds_workload_name(w)),
		Namespace:      C.GoString(C.ambient_zds_workload_namespace(w)),
		ServiceAccount: C.GoString(C.ambient_zds_workload_service_account(w)),
	}
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil { // must not unwind into C
				err = fmt.Errorf("handler panicked: %v", p)
			}
		}()
		err = cb.add(C.GoString(uid), wl, ns)
	}()
	if err == nil {
		return 0
	}
	if reason != nil && reasonCap > 0 {
		buf := unsafe.Slice((*byte)(unsafe.Pointer(reason)), int(reasonCap))
		n := copy(buf[:len(buf)-1], err.Error())
		buf[n] = 0
	}
	return 1
}

//export ambientGoZDSRemove
func ambientGoZDSRemove(user unsafe.Pointer, uid *C.char) {
	cb, ok := cgo.Handle(uintptr(user)).Value().(*zdsProxyCallbacks)
	if !ok {
		return
	}
	defer func() { _ = recover() }()
	cb.remove(C.GoString(uid))
}

//export ambientGoZDSEvent
func ambientGoZDSEvent(user unsafe.Pointer, event C.ambient_zds_event, detail *C.char) {
	cb, ok := cgo.Handle(uintptr(user)).Value().(*zdsProxyCallbacks)
	if !ok || cb.event == nil {
		return
	}
	defer func() { _ = recover() }()
	cb.event(ZDSEvent(event), C.GoString(detail))
}

func durationMs(d time.Duration, what string) (C.uint32_t, error) {
	ms := d.Milliseconds()
	if ms <= 0 || ms > 0xffffffff {
		return 0, &Error{Code: InvalidArgument, Message: what + " out of range"}
	}
	return C.uint32_t(ms), nil
}

// NewZDSProxy makes a proxy; it does not connect until Start. Errors:
// InvalidArgument (no Add or Remove, a path over 107 bytes, a bad backoff).
func NewZDSProxy(opts ZDSProxyOptions) (*ZDSProxy, error) {
	if opts.Add == nil || opts.Remove == nil {
		return nil, &Error{Code: InvalidArgument, Message: "ZDS proxy needs Add and Remove callbacks"}
	}
	o := C.ambient_zds_proxy_options_new()
	if o == nil {
		return nil, &Error{Code: ResourceExhausted, Message: "out of memory"}
	}
	defer C.ambient_zds_proxy_options_free(o)
	if opts.SocketPath != "" {
		if hasNUL(opts.SocketPath) {
			return nil, &Error{Code: InvalidArgument, Message: "socket path contains a NUL byte"}
		}
		s := C.CString(opts.SocketPath)
		err := takeError(C.ambient_zds_proxy_options_set_socket_path(o, s))
		C.free(unsafe.Pointer(s))
		if err != nil {
			return nil, err
		}
	}
	if opts.InitialBackoff != 0 || opts.MaxBackoff != 0 {
		initial, err := durationMs(opts.InitialBackoff, "ZDS proxy initial backoff")
		if err != nil {
			return nil, err
		}
		max, err := durationMs(opts.MaxBackoff, "ZDS proxy max backoff")
		if err != nil {
			return nil, err
		}
		if err := takeError(C.ambient_zds_proxy_options_set_backoff(o, initial, max)); err != nil {
			return nil, err
		}
	}
	if opts.RetryInterval < 0 {
		C.ambient_zds_proxy_options_set_retry_interval(o, 0)
	} else if opts.RetryInterval > 0 {
		ms, err := durationMs(opts.RetryInterval, "ZDS proxy retry interval")
		if err != nil {
			return nil, err
		}
		C.ambient_zds_proxy_options_set_retry_interval(o, ms)
	}
	p := &ZDSProxy{callbacks: cgo.NewHandle(&zdsProxyCallbacks{add: opts.Add, remove: opts.Remove, event: opts.Event})}
	C.ambientGoSetProxyCallbacks(o, C.uintptr_t(p.callbacks))
	if opts.Log != nil {
		p.log = cgo.NewHandle(opts.Log)
		C.ambientGoSetProxyLog(o, C.uintptr_t(p.log))
	}
	if err := takeError(C.ambient_zds_proxy_new(o, &p.ptr)); err != nil {
		p.deleteHandles()
		return nil, err
	}
	runtime.SetFinalizer(p, (*ZDSProxy).Close)
	return p, nil
}

func (p *ZDSProxy) deleteHandles() {
	p.callbacks.Delete()
	if p.log != 0 {
		p.log.Delete()
		p.log = 0
	}
}

// Start starts the proxy's thread: connect, hello, serve, reconnect with
// backoff, until Stop or Close. Errors: FailedPrecondition when already
// started.
func (p *ZDSProxy) Start() error {
	if p.ptr == nil {
		return closedError("ZDS proxy")
	}
	err := takeError(C.ambient_zds_proxy_start(p.ptr))
	runtime.KeepAlive(p)
	return err
}

// Stop closes the connection and joins the proxy's thread; pods are not
// removed (no Remove calls). Not from a callback.
func (p *ZDSProxy) Stop() {
	if p.ptr != nil {
		C.ambient_zds_proxy_stop(p.ptr)
	}
	runtime.KeepAlive(p)
}

// Close stops and releases the proxy. Not from a callback.
func (p *ZDSProxy) Close() {
	if p.ptr != nil {
		C.ambient_zds_proxy_free(p.ptr) // joins the thread: no calls after this
		p.ptr = nil
		p.deleteHandles()
	}
	runtime.SetFinalizer(p, nil)
}

// Ready reports readiness in ztunnel's sense: connected, the agent's
// snapshot applied, no refused pod pending a retry.
func (p *ZDSProxy) Ready() bool {
	if p.ptr == nil {
		return false
	}
	r := C.ambient_zds_proxy_ready(p.ptr) == 1
	runtime.KeepAlive(p)
	return r
}

// WorkloadCount returns how many pods are being served.
func (p *ZDSProxy) WorkloadCount() int {
	if p.ptr == nil {
		return 0
	}
	n := int(C.ambient_zds_proxy_workload_count(p.ptr))
	runtime.KeepAlive(p)
	return n
}
