package ambient

/*
#include <stdlib.h>
#include "ambient/ambient.h"
void ambientGoSetClock(ambient_verify_options *opts, uintptr_t handle);
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"time"
	"unsafe"
)

// SpiffeIDError is the Detail of an Error from parsing a SPIFFE ID
// (ambient_spiffe_id_error).
const (
	SpiffeIDEmpty              = C.AMBIENT_SPIFFE_ID_EMPTY
	SpiffeIDBadScheme          = C.AMBIENT_SPIFFE_ID_BAD_SCHEME
	SpiffeIDMissingTrustDomain = C.AMBIENT_SPIFFE_ID_MISSING_TRUST_DOMAIN
	SpiffeIDBadTrustDomainChar = C.AMBIENT_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR
	SpiffeIDBadPathChar        = C.AMBIENT_SPIFFE_ID_BAD_PATH_CHAR
	SpiffeIDEmptySegment       = C.AMBIENT_SPIFFE_ID_EMPTY_SEGMENT
	SpiffeIDDotSegment         = C.AMBIENT_SPIFFE_ID_DOT_SEGMENT
	SpiffeIDTrailingSlash      = C.AMBIENT_SPIFFE_ID_TRAILING_SLASH
	SpiffeIDTooLong            = C.AMBIENT_SPIFFE_ID_TOO_LONG
	SpiffeIDTrustDomainTooLong = C.AMBIENT_SPIFFE_ID_TRUST_DOMAIN_TOO_LONG
)

// SVIDError is the Detail of an Error from X509-SVID verification
// (ambient_svid_error).
const (
	SVIDEmptyChain            = C.AMBIENT_SVID_EMPTY_CHAIN
	SVIDMalformedCertificate  = C.AMBIENT_SVID_MALFORMED_CERTIFICATE
	SVIDNoURISAN              = C.AMBIENT_SVID_NO_URI_SAN
	SVIDMultipleURISANs       = C.AMBIENT_SVID_MULTIPLE_URI_SANS
	SVIDInvalidSpiffeID       = C.AMBIENT_SVID_INVALID_SPIFFE_ID
	SVIDLeafIDWithoutPath     = C.AMBIENT_SVID_LEAF_ID_WITHOUT_PATH
	SVIDLeafIsCA              = C.AMBIENT_SVID_LEAF_IS_CA
	SVIDNoKeyUsage            = C.AMBIENT_SVID_NO_KEY_USAGE
	SVIDLeafKeyCertSign       = C.AMBIENT_SVID_LEAF_KEY_CERT_SIGN
	SVIDLeafCRLSign           = C.AMBIENT_SVID_LEAF_CRL_SIGN
	SVIDNoDigitalSignature    = C.AMBIENT_SVID_NO_DIGITAL_SIGNATURE
	SVIDTrustDomainNotAllowed = C.AMBIENT_SVID_TRUST_DOMAIN_NOT_ALLOWED
	SVIDNoBundle              = C.AMBIENT_SVID_NO_BUNDLE
	SVIDExpired               = C.AMBIENT_SVID_EXPIRED
	SVIDNotYetValid           = C.AMBIENT_SVID_NOT_YET_VALID
	SVIDUntrusted             = C.AMBIENT_SVID_UNTRUSTED
	SVIDBadSignature          = C.AMBIENT_SVID_BAD_SIGNATURE
	SVIDChainInvalid          = C.AMBIENT_SVID_CHAIN_INVALID
	SVIDUnexpectedIdentity    = C.AMBIENT_SVID_UNEXPECTED_IDENTITY
)

// SpiffeID is a validated SPIFFE ID, spiffe://TrustDomain/Path.
type SpiffeID struct {
	ID          string // the whole ID
	TrustDomain string // e.g. "example.org"
	Path        string // "" or "/a/b"
}

func (id SpiffeID) String() string { return id.ID }

// takeSpiffeID copies an owned ambient_spiffe_id into Go and frees it.
func takeSpiffeID(p *C.ambient_spiffe_id) SpiffeID {
	if p == nil {
		return SpiffeID{}
	}
	defer C.ambient_spiffe_id_free(p)
	return SpiffeID{
		ID:          C.GoString(C.ambient_spiffe_id_get0_string(p)),
		TrustDomain: C.GoString(C.ambient_spiffe_id_get0_trust_domain(p)),
		Path:        C.GoString(C.ambient_spiffe_id_get0_path(p)),
	}
}

// stringArg copies s into C memory; the caller frees the pointer with
// C.free (NULL when s is empty).
func stringArg(s string) (*C.char, C.size_t) {
	if len(s) == 0 {
		return nil, 0
	}
	return (*C.char)(C.CBytes([]byte(s))), C.size_t(len(s))
}

// ParseSpiffeID validates id as a SPIFFE ID. Errors are InvalidArgument with
// a SpiffeID* Detail and a message naming the offset of the problem.
func ParseSpiffeID(id string) (SpiffeID, error) {
	p, n := stringArg(id)
	defer C.free(unsafe.Pointer(p))
	var out *C.ambient_spiffe_id
	err := takeError(C.ambient_spiffe_id_parse(p, n, &out))
	if err != nil {
		return SpiffeID{}, err
	}
	return takeSpiffeID(out), nil
}

// ValidateSpiffeID is the allocation-free check: nil when id is a valid
// SPIFFE ID, else an InvalidArgument Error whose Detail is the reason.
func ValidateSpiffeID(id string) error {
	p, n := stringArg(id)
	defer C.free(unsafe.Pointer(p))
	var reason C.ambient_spiffe_id_error
	rc := C.ambient_spiffe_id_validate(p, n, &reason)
	if rc == 0 {
		return nil
	}
	return &Error{Code: Code(rc), Detail: int(reason)}
}

// IstioIdentity is Istio's view of a SPIFFE ID:
// spiffe://TrustDomain/ns/Namespace/sa/ServiceAccount.
type IstioIdentity struct {
	TrustDomain, Namespace, ServiceAccount string
}

// ParseIstioIdentity reads uri as ztunnel does (parts are not validated and
// may be empty). Errors: InvalidArgument.
func ParseIstioIdentity(uri string) (IstioIdentity, error) {
	p, n := stringArg(uri)
	defer C.free(unsafe.Pointer(p))
	var out *C.ambient_istio_identity
	err := takeError(C.ambient_istio_identity_parse(p, n, &out))
	if err != nil {
		return IstioIdentity{}, err
	}
	defer C.ambient_istio_identity_free(out)
	return IstioIdentity{
		TrustDomain:    C.GoString(C.ambient_istio_identity_get0_trust_domain(out)),
		Namespace:      C.GoString(C.ambient_istio_identity_get0_namespace(out)),
		ServiceAccount: C.GoString(C.ambient_istio_identity_get0_service_account(out)),
	}, nil
}

func closedError(what string) error {
	return &Error{Code: FailedPrecondition, Message: what + " is closed"}
}

// TrustBundles holds the X.509 authorities of trust domains. Updates swap in
// a new snapshot atomically; verifiers made from it see them. Safe for
// concurrent use (except Close).
type TrustBundles struct {
	ptr *C.ambient_trust_bundles
}

// NewTrustBundles returns an empty set of trust bundles.
func NewTrustBundles() (*TrustBundles, error) {
	var out *C.ambient_trust_bundles
	if err := takeError(C.ambient_trust_bundles_new(&out)); err != nil {
		return nil, err
	}
	b := &TrustBundles{ptr: out}
	runtime.SetFinalizer(b, (*TrustBundles).Close)
	return b, nil
}

// Close drops this reference; verifiers made from b keep working.
func (b *TrustBundles) Close() {
	if b.ptr != nil {
		C.ambient_trust_bundles_free(b.ptr)
		b.ptr = nil
	}
	runtime.SetFinalizer(b, nil)
}

// SetPEM makes the certificates in pem the authorities of trustDomain (a
// name or a SPIFFE ID), replacing what it had. On error nothing changes.
func (b *TrustBundles) SetPEM(trustDomain string, pem []byte) error {
	if b.ptr == nil {
		return closedError("trust bundles")
	}
	td := C.CString(trustDomain)
	defer C.free(unsafe.Pointer(td))
	p, n := cBytes(pem)
	err := takeError(C.ambient_trust_bundles_set_pem(b.ptr, td, p, n))
	runtime.KeepAlive(pem)
	return err
}

// SetSPIFFEJSON is SetPEM for a SPIFFE trust bundle (JWK Set with x509-svid
// keys).
func (b *TrustBundles) SetSPIFFEJSON(trustDomain string, json []byte) error {
	if b.ptr == nil {
		return closedError("trust bundles")
	}
	td := C.CString(trustDomain)
	defer C.free(unsafe.Pointer(td))
	p, n := cBytes(json)
	err := takeError(C.ambient_trust_bundles_set_spiffe_json(b.ptr, td, p, n))
	runtime.KeepAlive(json)
	return err
}

// SetBundleMapJSON replaces all trust domains with those of a SPIFFE bundle
// map, {"trust_domains": {"td": bundle}}. On error nothing changes.
func (b *TrustBundles) SetBundleMapJSON(json []byte) error {
	if b.ptr == nil {
		return closedError("trust bundles")
	}
	p, n := cBytes(json)
	err := takeError(C.ambient_trust_bundles_set_bundle_map_json(b.ptr, p, n))
	runtime.KeepAlive(json)
	return err
}

// Remove drops trustDomain. Errors: NotFound when it had no bundle.
func (b *TrustBundles) Remove(trustDomain string) error {
	if b.ptr == nil {
		return closedError("trust bundles")
	}
	td := C.CString(trustDomain)
	defer C.free(unsafe.Pointer(td))
	return takeError(C.ambient_trust_bundles_remove(b.ptr, td))
}

// Len returns how many trust domains have a bundle.
func (b *TrustBundles) Len() int {
	if b.ptr == nil {
		return 0
	}
	n := int(C.ambient_trust_bundles_count(b.ptr))
	runtime.KeepAlive(b)
	return n
}

// VerifyOptions is the policy of an SVIDVerifier. The zero value accepts any
// identity of any trust domain that has a bundle, at the current time.
type VerifyOptions struct {
	// ExpectedIDs, when not empty, lists the SPIFFE IDs the peer may have.
	ExpectedIDs []string
	// TrustDomains, when not empty, lists the trust domains the peer may be in.
	TrustDomains []string
	// Time, when not zero, pins the verification time.
	Time time.Time
	// Clock, when set (and Time is zero), gives the verification time; it
	// is called from whichever goroutine or thread verifies.
	Clock func() time.Time
}

// SVIDVerifier checks X509-SVID chains against trust bundles and a policy.
// Safe for concurrent use (except Close).
type SVIDVerifier struct {
	ptr *C.ambient_svid_verifier
}

// NewSVIDVerifier returns a verifier reading bundles (which it keeps alive)
// with the policy opts (nil: defaults). Errors: InvalidArgument for a bad
// expected ID (Detail: SpiffeID*) or trust domain, or closed bundles.
func NewSVIDVerifier(bundles *TrustBundles, opts *VerifyOptions) (*SVIDVerifier, error) {
	if bundles == nil || bundles.ptr == nil {
		return nil, &Error{Code: InvalidArgument, Message: "trust bundles are nil or closed"}
	}
	o := C.ambient_verify_options_new()
	if o == nil {
		return nil, &Error{Code: ResourceExhausted, Message: "out of memory"}
	}
	defer C.ambient_verify_options_free(o)
	if opts != nil {
		for _, id := range opts.ExpectedIDs {
			p, n := stringArg(id)
			err := takeError(C.ambient_verify_options_add_expected_id(o, p, n))
			C.free(unsafe.Pointer(p))
			if err != nil {
				return nil, err
			}
		}
		for _, td := range opts.TrustDomains {
			ctd := C.CString(td)
			err := takeError(C.ambient_verify_options_add_trust_domain(o, ctd))
			C.free(unsafe.Pointer(ctd))
			if err != nil {
				return nil, err
			}
		}
		if !opts.Time.IsZero() {
			C.ambient_verify_options_set_time(o, C.int64_t(opts.Time.Unix()))
		} else if opts.Clock != nil {
			// libambient owns the handle from here: it deletes it (through
			// ambientGoDeleteHandle) when the options and every verifier
			// made from them are gone.
			C.ambientGoSetClock(o, C.uintptr_t(cgo.NewHandle(opts.Clock)))
		}
	}
	var out *C.ambient_svid_verifier
	err := takeError(C.ambient_svid_verifier_new(bundles.ptr, o, &out))
	runtime.KeepAlive(bundles)
	if err != nil {
		return nil, err
	}
	v := &SVIDVerifier{ptr: out}
	runtime.SetFinalizer(v, (*SVIDVerifier).Close)
	return v, nil
}

// Close releases the verifier.
func (v *SVIDVerifier) Close() {
	if v.ptr != nil {
		C.ambient_svid_verifier_free(v.ptr) // its clock handle goes with it
		v.ptr = nil
	}
	runtime.SetFinalizer(v, nil)
}

// VerifyPEM checks a PEM chain (leaf first) and returns the peer's SPIFFE ID.
// Errors carry an SVID* Detail: Unauthenticated for broken chains,
// PermissionDenied for a refused trust domain or identity.
func (v *SVIDVerifier) VerifyPEM(pem []byte) (SpiffeID, error) {
	if v.ptr == nil {
		return SpiffeID{}, closedError("verifier")
	}
	p, n := cBytes(pem)
	var out *C.ambient_spiffe_id
	err := takeError(C.ambient_svid_verifier_verify_pem(v.ptr, p, n, &out))
	runtime.KeepAlive(pem)
	runtime.KeepAlive(v)
	if err != nil {
		return SpiffeID{}, err
	}
	return takeSpiffeID(out), nil
}

// VerifyDER is VerifyPEM for DER certificates, leaf first (as
// tls.ConnectionState.PeerCertificates[i].Raw gives them).
func (v *SVIDVerifier) VerifyDER(certs [][]byte) (SpiffeID, error) {
	if v.ptr == nil {
		return SpiffeID{}, closedError("verifier")
	}
	n := len(certs)
	var ptrs **C.uint8_t
	var lens *C.size_t
	if n > 0 {
		// cgo forbids passing Go memory holding Go pointers: build the arrays
		// in C memory.
		ptrs = (**C.uint8_t)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(uintptr(0)))))
		lens = (*C.size_t)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.size_t(0)))))
		defer C.free(unsafe.Pointer(ptrs))
		defer C.free(unsafe.Pointer(lens))
		ps := unsafe.Slice(ptrs, n)
		ls := unsafe.Slice(lens, n)
		for i, c := range certs {
			if len(c) > 0 {
				ps[i] = (*C.uint8_t)(C.CBytes(c))
				defer C.free(unsafe.Pointer(ps[i]))
			}
			ls[i] = C.size_t(len(c))
		}
	}
	var out *C.ambient_spiffe_id
	err := takeError(C.ambient_svid_verifier_verify_der(v.ptr, ptrs, lens, C.size_t(n), &out))
	runtime.KeepAlive(v)
	if err != nil {
		return SpiffeID{}, err
	}
	return takeSpiffeID(out), nil
}

// Credentials are our own certificate chain and private key, rotated
// atomically. Safe for concurrent use (except Close).
type Credentials struct {
	ptr *C.ambient_credentials
}

// NewCredentialsPEM loads a PEM chain (leaf first) and a PEM private key
// (ECDSA P-256 or RSA >= 2048). Errors: InvalidArgument for unreadable PEM,
// an unsupported key, a key not matching the leaf, or a leaf without one
// SPIFFE ID URI SAN.
func NewCredentialsPEM(chainPEM, keyPEM []byte) (*Credentials, error) {
	cp, cn := cBytes(chainPEM)
	kp, kn := cBytes(keyPEM)
	var out *C.ambient_credentials
	err := takeError(C.ambient_credentials_new_pem(cp, cn, kp, kn, &out))
	runtime.KeepAlive(chainPEM)
	runtime.KeepAlive(keyPEM)
	if err != nil {
		return nil, err
	}
	c := &Credentials{ptr: out}
	runtime.SetFinalizer(c, (*Credentials).Close)
	return c, nil
}

// Close drops this reference.
func (c *Credentials) Close() {
	if c.ptr != nil {
		C.ambient_credentials_free(c.ptr)
		c.ptr = nil
	}
	runtime.SetFinalizer(c, nil)
}

// Rotate replaces the pair atomically; on error nothing changes.
func (c *Credentials) Rotate(chainPEM, keyPEM []byte) error {
	if c.ptr == nil {
		return closedError("credentials")
	}
	cp, cn := cBytes(chainPEM)
	kp, kn := cBytes(keyPEM)
	err := takeError(C.ambient_credentials_rotate_pem(c.ptr, cp, cn, kp, kn))
	runtime.KeepAlive(chainPEM)
	runtime.KeepAlive(keyPEM)
	return err
}

// ID returns the SPIFFE ID of the current leaf.
func (c *Credentials) ID() (SpiffeID, error) {
	if c.ptr == nil {
		return SpiffeID{}, closedError("credentials")
	}
	var out *C.ambient_spiffe_id
	err := takeError(C.ambient_credentials_get1_id(c.ptr, &out))
	runtime.KeepAlive(c)
	if err != nil {
		return SpiffeID{}, err
	}
	return takeSpiffeID(out), nil
}

// Validity returns the current leaf's NotBefore and NotAfter and the time
// to renew it (half-way, as ztunnel). Zero times when closed.
func (c *Credentials) Validity() (notBefore, notAfter, refreshAt time.Time) {
	if c.ptr == nil {
		return
	}
	notBefore = time.Unix(int64(C.ambient_credentials_not_before(c.ptr)), 0)
	notAfter = time.Unix(int64(C.ambient_credentials_not_after(c.ptr)), 0)
	refreshAt = time.Unix(int64(C.ambient_credentials_refresh_at(c.ptr)), 0)
	runtime.KeepAlive(c)
	return
}
