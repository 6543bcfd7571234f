package ambient

/*
#include <stdlib.h>
#include "ambient/ambient.h"
*/
import "C"

import (
	"runtime"
	"time"
	"unsafe"
)

// CAClientOptions says how a CAClient reaches the Istio CA (istiod's
// CreateCertificate, or a separate CA such as ztunnel's CA_ADDRESS). Zero
// values keep libambient's defaults.
type CAClientOptions struct {
	// Address of the CA: "host:port" or "[v6]:port". Required.
	Address string
	// RootsPEMFile switches TLS on: the CA's certificate must chain to the
	// PEM roots in this file and name ServerName.
	RootsPEMFile string
	// ServerName the CA's certificate must carry ("" keeps
	// "istiod.istio-system.svc").
	ServerName string
	// TokenFile is sent as `authorization: Bearer` (re-read when it changes).
	TokenFile string
	// ClusterID is the `clusterid` header ("" keeps "Kubernetes").
	ClusterID string
	// Timeout of one CreateCertificate call (0 keeps 10 s).
	Timeout time.Duration
	// Validity asked of the CA (0 keeps 24 h).
	Validity time.Duration
	// NoImpersonate leaves out the ImpersonatedIdentity metadata (a workload
	// asking for its own certificate with its own token).
	NoImpersonate bool
}

// CAClient gets workload certificates from the Istio CA on a Loop, without
// xDS: for each identity acquired it makes a key inside the process, has the
// CA sign it, checks the answer and renews it half-way through its
// validity. Its methods may be called from any goroutine.
type CAClient struct {
	loop *Loop
	ptr  *C.ambient_ca_client
}

// CAState is where an acquired identity's certificate stands.
type CAState int

const (
	CAInitializing CAState = C.AMBIENT_CA_INITIALIZING // no certificate yet
	CAAvailable    CAState = C.AMBIENT_CA_AVAILABLE    // a valid certificate is held
	CAUnavailable  CAState = C.AMBIENT_CA_UNAVAILABLE  // the last fetch failed, none valid held
)

func (s CAState) String() string {
	switch s {
	case CAInitializing:
		return "initializing"
	case CAAvailable:
		return "available"
	default:
		return "unavailable"
	}
}

// NewCAClient makes a CA client on the loop and starts connecting to the CA.
// Errors: InvalidArgument (no or a malformed address, a roots file without
// certificates), NotFound / PermissionDenied (an unreadable roots file).
func (l *Loop) NewCAClient(o CAClientOptions) (*CAClient, error) {
	if hasNUL(o.Address, o.RootsPEMFile, o.ServerName, o.TokenFile, o.ClusterID) {
		return nil, &Error{Code: InvalidArgument, Message: "argument contains a NUL byte"}
	}
	opts := C.ambient_ca_client_options_new()
	if opts == nil {
		return nil, &Error{Code: ResourceExhausted, Message: "out of memory"}
	}
	defer C.ambient_ca_client_options_free(opts)
	set := func(f func(*C.ambient_ca_client_options, *C.char) *C.ambient_error, v string) error {
		cs := C.CString(v)
		defer C.free(unsafe.Pointer(cs))
		return takeError(f(opts, cs))
	}
	type setter struct {
		value string
		f     func(*C.ambient_ca_client_options, *C.char) *C.ambient_error
	}
	for _, s := range []setter{
		{o.Address, func(p *C.ambient_ca_client_options, v *C.char) *C.ambient_error {
			return C.ambient_ca_client_options_set_address(p, v)
		}},
		{o.RootsPEMFile, func(p *C.ambient_ca_client_options, v *C.char) *C.ambient_error {
			return C.ambient_ca_client_options_set_roots_pem_file(p, v)
		}},
		{o.ServerName, func(p *C.ambient_ca_client_options, v *C.char) *C.ambient_error {
			return C.ambient_ca_client_options_set_server_name(p, v)
		}},
		{o.TokenFile, func(p *C.ambient_ca_client_options, v *C.char) *C.ambient_error {
			return C.ambient_ca_client_options_set_token_file(p, v)
		}},
		{o.ClusterID, func(p *C.ambient_ca_client_options, v *C.char) *C.ambient_error {
			return C.ambient_ca_client_options_set_cluster_id(p, v)
		}},
	} {
		if s.value == "" {
			continue
		}
		if err := set(s.f, s.value); err != nil {
			return nil, err
		}
	}
	if o.Timeout > 0 {
		ms := uint64(o.Timeout / time.Millisecond)
		if ms == 0 {
			ms = 1
		}
		if err := takeError(C.ambient_ca_client_options_set_timeout_ms(opts, C.uint64_t(ms))); err != nil {
			return nil, err
		}
	}
	if o.Validity > 0 {
		s := uint64(o.Validity / time.Second)
		if s == 0 {
			s = 1
		}
		if err := takeError(C.ambient_ca_client_options_set_validity_s(opts, C.uint64_t(s))); err != nil {
			return nil, err
		}
	}
	if o.NoImpersonate {
		C.ambient_ca_client_options_set_impersonate(opts, 0)
	}
	c := &CAClient{loop: l}
	var err error
	if derr := l.do(func() {
		err = takeError(C.ambient_ca_client_new(l.ptr, opts, &c.ptr))
		if err == nil {
			l.caClients[c] = struct{}{}
		}
	}); derr != nil {
		err = derr
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Close closes the connection to the CA. Certificates acquired keep their
// last certificate and are not renewed any more (close them as usual).
func (c *CAClient) Close() { _ = c.loop.do(c.free) }

// free runs on the loop thread.
func (c *CAClient) free() {
	if c.ptr == nil {
		return
	}
	C.ambient_ca_client_free(c.ptr)
	c.ptr = nil
	delete(c.loop.caClients, c)
}

// CACertificate is one use of an identity's certificate (see
// CAClient.Acquire); the certificate is dropped with its last use.
type CACertificate struct {
	loop *Loop
	ptr  *C.ambient_ca_certificate
	id   string
}

// Acquire counts one use of the identity spiffeID in and returns it; a new
// identity is fetched at once (the answer comes while the loop runs). Errors:
// InvalidArgument (an empty or malformed SPIFFE ID), FailedPrecondition (the
// client is closed).
func (c *CAClient) Acquire(spiffeID string) (*CACertificate, error) {
	if hasNUL(spiffeID) {
		return nil, &Error{Code: InvalidArgument, Message: "argument contains a NUL byte"}
	}
	cs := C.CString(spiffeID)
	defer C.free(unsafe.Pointer(cs))
	cert := &CACertificate{loop: c.loop}
	var err error
	if derr := c.loop.do(func() {
		if c.ptr == nil {
			err = closedError("CA client")
			return
		}
		err = takeError(C.ambient_ca_client_acquire(c.ptr, cs, &cert.ptr))
		if err == nil {
			cert.id = C.GoString(C.ambient_ca_certificate_get0_id(cert.ptr))
		}
	}); derr != nil {
		err = derr
	}
	if err != nil {
		return nil, err
	}
	runtime.SetFinalizer(cert, (*CACertificate).Close)
	return cert, nil
}

// ID returns the SPIFFE ID acquired.
func (cert *CACertificate) ID() string { return cert.id }

// CAStatus is what a CACertificate reports.
type CAStatus struct {
	State    CAState
	NotAfter time.Time // zero when no certificate is held
	Failures uint32    // fetches failed in a row
	// LastError says why the last fetch failed ("" when it succeeded).
	LastError string
}

// Status reports the certificate's state. Errors: FailedPrecondition when
// closed (or the loop is).
func (cert *CACertificate) Status() (CAStatus, error) {
	var s CAStatus
	err := cert.onLoop(func() {
		s.State = CAState(C.ambient_ca_certificate_state(cert.ptr))
		if na := int64(C.ambient_ca_certificate_not_after(cert.ptr)); na != 0 {
			s.NotAfter = time.Unix(na, 0)
		}
		s.Failures = uint32(C.ambient_ca_certificate_failures(cert.ptr))
		s.LastError = copiedText(func(buf *C.char, size C.size_t) C.size_t {
			return C.ambient_ca_certificate_last_error(cert.ptr, buf, size)
		})
	})
	return s, err
}

// PEM returns the held chain (leaf first) and its private key (PKCS#8):
// the key leaves libambient only through this call; prefer Credentials.
// Errors: FailedPrecondition (no certificate yet, or closed).
func (cert *CACertificate) PEM() (chain, key []byte, err error) {
	var cerr error
	derr := cert.onLoop(func() {
		chain, cerr = copiedPEM(cert.ptr, pemChain)
		if cerr == nil {
			key, cerr = copiedPEM(cert.ptr, pemKey)
		}
	})
	if derr != nil {
		return nil, nil, derr
	}
	return chain, key, cerr
}

// RootPEM returns the workload trust root the CA's chain ended with (the
// trust bundle of the identity's trust domain). Errors: FailedPrecondition
// (no certificate yet, the client or the certificate closed).
func (cert *CACertificate) RootPEM() (root []byte, err error) {
	var cerr error
	if derr := cert.onLoop(func() { root, cerr = copiedPEM(cert.ptr, pemRoot) }); derr != nil {
		return nil, derr
	}
	return root, cerr
}

const (
	pemChain = iota
	pemKey
	pemRoot
)

func copiedPEM(p *C.ambient_ca_certificate, which int) ([]byte, error) {
	call := func(buf *C.char, size C.size_t, n *C.size_t) *C.ambient_error {
		switch which {
		case pemKey:
			return C.ambient_ca_certificate_key_pem(p, buf, size, n)
		case pemRoot:
			return C.ambient_ca_certificate_root_pem(p, buf, size, n)
		}
		return C.ambient_ca_certificate_chain_pem(p, buf, size, n)
	}
	var n C.size_t
	if err := takeError(call(nil, 0, &n)); err != nil {
		return nil, err
	}
	buf := make([]byte, int(n)+1)
	if err := takeError(call((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n)); err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// Credentials returns credentials that always hold the identity's current
// certificate (see HBONETLS and SSL contexts); they keep the identity
// acquired while they live. Close them when done.
func (cert *CACertificate) Credentials() (*Credentials, error) {
	var out *C.ambient_credentials
	var err error
	if derr := cert.onLoop(func() {
		err = takeError(C.ambient_ca_certificate_get1_credentials(cert.ptr, &out))
	}); derr != nil {
		return nil, derr
	}
	if err != nil {
		return nil, err
	}
	c := &Credentials{ptr: out}
	runtime.SetFinalizer(c, (*Credentials).Close)
	return c, nil
}

func (cert *CACertificate) onLoop(f func()) error {
	var closed bool
	if err := cert.loop.do(func() {
		if cert.ptr == nil {
			closed = true
			return
		}
		f()
	}); err != nil {
		return err
	}
	if closed {
		return closedError("CA certificate")
	}
	return nil
}

// Close releases this use of the identity.
func (cert *CACertificate) Close() {
	runtime.SetFinalizer(cert, nil)
	free := func() {
		if cert.ptr != nil {
			C.ambient_ca_certificate_free(cert.ptr)
			cert.ptr = nil
		}
	}
	if err := cert.loop.do(free); err != nil {
		// The loop is closed, and every CA client on it with it: the
		// release touches nothing but the handle.
		free()
	}
}
