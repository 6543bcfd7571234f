package ambient

/*
#include <stdlib.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include "ambient/ambient.h"

int ambientGoAuthzCheck(const ambient_authz_store *store, const char *ns, const char *const *keys,
                        size_t n_keys, const struct sockaddr *src, const struct sockaddr *dst,
                        const char *src_identity, ambient_authz_decision *decision);
*/
import "C"

import (
	"fmt"
	"net/netip"
	"runtime"
	"unsafe"
)

// PolicyStore holds the L4 authorization policies in force (Istio
// Authorization resources) and decides connections with ztunnel's semantics.
// It is safe for concurrent use: checks run against an immutable snapshot
// while updates swap in a new one.
type PolicyStore struct {
	ptr *C.ambient_authz_store
}

// NewPolicyStore returns an empty store: every connection is allowed.
func NewPolicyStore() *PolicyStore {
	s := &PolicyStore{ptr: C.ambient_authz_store_new()}
	if s.ptr == nil {
		panic("ambient: out of memory")
	}
	runtime.SetFinalizer(s, (*PolicyStore).Close)
	return s
}

// Close releases the store. Further use returns errors.
func (s *PolicyStore) Close() {
	if s.ptr != nil {
		C.ambient_authz_store_free(s.ptr)
		s.ptr = nil
	}
	runtime.SetFinalizer(s, nil)
}

func cBytes(b []byte) (*C.char, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.char)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}

// ReplaceJSON replaces every policy with those in json: {"policies": [...]},
// a bare array, or one Authorization in the protobuf JSON mapping. On error
// the store is unchanged.
func (s *PolicyStore) ReplaceJSON(json []byte) error {
	if s.ptr == nil {
		return &Error{Code: FailedPrecondition, Message: "policy store is closed"}
	}
	if len(json) == 0 {
		return &Error{Code: InvalidArgument, Message: "empty policy JSON"}
	}
	p, n := cBytes(json)
	err := takeError(C.ambient_authz_store_replace_json(s.ptr, p, n))
	runtime.KeepAlive(json)
	return err
}

// UpsertProto adds one binary istio.security.Authorization (as received over
// xDS), replacing the policy with the same namespace/name.
func (s *PolicyStore) UpsertProto(msg []byte) error {
	if s.ptr == nil {
		return &Error{Code: FailedPrecondition, Message: "policy store is closed"}
	}
	p, n := cBytes(msg)
	err := takeError(C.ambient_authz_store_upsert_proto(s.ptr, (*C.uint8_t)(unsafe.Pointer(p)), n))
	runtime.KeepAlive(msg)
	return err
}

// Remove deletes the policy ns/name and reports whether it existed.
func (s *PolicyStore) Remove(ns, name string) bool {
	if s.ptr == nil {
		return false
	}
	cns, cname := C.CString(ns), C.CString(name)
	defer C.free(unsafe.Pointer(cns))
	defer C.free(unsafe.Pointer(cname))
	return C.ambient_authz_store_remove(s.ptr, cns, cname) == 1
}

// Len returns the number of policies.
func (s *PolicyStore) Len() int {
	if s.ptr == nil {
		return 0
	}
	return int(C.ambient_authz_store_size(s.ptr))
}

// Decision is the outcome of a check.
type Decision struct {
	Allowed    bool
	Reason     string   // why it was denied; empty when allowed
	Policy     string   // key of the deciding policy, if one decided
	DryRunHits []string // keys of dry-run policies that matched
}

// Request describes a connection to a workload.
type Request struct {
	WorkloadNamespace string
	WorkloadPolicies  []string // keys "ns/name" of the policies selecting the workload
	Src, Dst          netip.AddrPort
	SrcIdentity       string // peer SPIFFE ID from mTLS; empty for plaintext
}

func sockaddr(ap netip.AddrPort) (unsafe.Pointer, func()) {
	a := ap.Addr().Unmap()
	if a.Is4() {
		sa := (*C.struct_sockaddr_in)(C.calloc(1, C.sizeof_struct_sockaddr_in))
		sa.sin_family = C.AF_INET
		*(*[2]byte)(unsafe.Pointer(&sa.sin_port)) = [2]byte{byte(ap.Port() >> 8), byte(ap.Port())}
		*(*[4]byte)(unsafe.Pointer(&sa.sin_addr)) = a.As4()
		return unsafe.Pointer(sa), func() { C.free(unsafe.Pointer(sa)) }
	}
	sa := (*C.struct_sockaddr_in6)(C.calloc(1, C.sizeof_struct_sockaddr_in6))
	sa.sin6_family = C.AF_INET6
	*(*[2]byte)(unsafe.Pointer(&sa.sin6_port)) = [2]byte{byte(ap.Port() >> 8), byte(ap.Port())}
	*(*[16]byte)(unsafe.Pointer(&sa.sin6_addr)) = a.As16()
	return unsafe.Pointer(sa), func() { C.free(unsafe.Pointer(sa)) }
}

// Check decides whether the connection in req is allowed.
func (s *PolicyStore) Check(req Request) (Decision, error) {
	if s.ptr == nil {
		return Decision{}, &Error{Code: FailedPrecondition, Message: "policy store is closed"}
	}
	if !req.Src.IsValid() || !req.Dst.IsValid() {
		return Decision{}, &Error{Code: InvalidArgument, Message: "source and destination must be set"}
	}
	dec := C.ambient_authz_decision_new()
	if dec == nil {
		panic("ambient: out of memory")
	}
	defer C.ambient_authz_decision_free(dec)

	cns := C.CString(req.WorkloadNamespace)
	defer C.free(unsafe.Pointer(cns))
	var keys **C.char
	if n := len(req.WorkloadPolicies); n > 0 {
		arr := (*[1 << 20]*C.char)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(uintptr(0)))))[:n:n]
		for i, k := range req.WorkloadPolicies {
			arr[i] = C.CString(k)
		}
		defer func() {
			for _, p := range arr {
				C.free(unsafe.Pointer(p))
			}
			C.free(unsafe.Pointer(&arr[0]))
		}()
		keys = &arr[0]
	}
	var cid *C.char
	if req.SrcIdentity != "" {
		cid = C.CString(req.SrcIdentity)
		defer C.free(unsafe.Pointer(cid))
	}
	src, freeSrc := sockaddr(req.Src)
	defer freeSrc()
	dst, freeDst := sockaddr(req.Dst)
	defer freeDst()

	rc := C.ambientGoAuthzCheck(s.ptr, cns, keys, C.size_t(len(req.WorkloadPolicies)),
		(*C.struct_sockaddr)(src), (*C.struct_sockaddr)(dst), cid, dec)
	runtime.KeepAlive(s)
	if rc < 0 {
		return Decision{}, &Error{Code: Code(rc), Message: fmt.Sprintf("authz check: %s", Code(rc))}
	}
	d := Decision{
		Allowed: rc == 1,
		Reason:  C.GoString(C.ambient_authz_decision_get0_reason(dec)),
		Policy:  C.GoString(C.ambient_authz_decision_get0_policy(dec)),
	}
	for i := C.size_t(0); i < C.ambient_authz_decision_num_dry_run_hits(dec); i++ {
		d.DryRunHits = append(d.DryRunHits, C.GoString(C.ambient_authz_decision_get0_dry_run_hit(dec, i)))
	}
	return d, nil
}
