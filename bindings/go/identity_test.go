package ambient

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

type testCert struct {
	cert   *x509.Certificate
	der    []byte
	key    *ecdsa.PrivateKey
	pem    []byte
	keyPEM []byte
}

var serial int64 = 1

// issue makes a certificate for uri (empty: none) signed by parent (nil:
// self-signed CA).
func issue(t *testing.T, parent *testCert, uri string, isCA bool, notBefore, notAfter time.Time) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{Organization: []string{"ambient test"}, CommonName: fmt.Sprintf("test %d", serial)},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	if uri != "" {
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = []*url.URL{u}
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{
		cert: cert, der: der, key: key,
		pem:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
}

func errCode(t *testing.T, err error, code Code, detail int) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want *Error %v/%d, got %v", code, detail, err)
	}
	if e.Code != code || e.Detail != detail {
		t.Fatalf("want %v detail %d, got %v detail %d (%q)", code, detail, e.Code, e.Detail, e.Message)
	}
	if e.Message == "" {
		t.Fatalf("error %v/%d has no message", code, detail)
	}
}

func TestParseSpiffeID(t *testing.T) {
	id, err := ParseSpiffeID("spiffe://example.org/ns/default/sa/web")
	if err != nil {
		t.Fatal(err)
	}
	if id.TrustDomain != "example.org" || id.Path != "/ns/default/sa/web" ||
		id.String() != "spiffe://example.org/ns/default/sa/web" {
		t.Fatalf("parsed %+v", id)
	}
	td, err := ParseSpiffeID("spiffe://example.org")
	if err != nil || td.Path != "" || td.TrustDomain != "example.org" {
		t.Fatalf("trust domain ID: %+v %v", td, err)
	}
	for in, detail := range map[string]int{
		"":                          SpiffeIDEmpty,
		"http://example.org/a":      SpiffeIDBadScheme,
		"spiffe:///a":               SpiffeIDMissingTrustDomain,
		"spiffe://Example.org/a":    SpiffeIDBadTrustDomainChar,
		"spiffe://example.org/a b":  SpiffeIDBadPathChar,
		"spiffe://example.org//a":   SpiffeIDEmptySegment,
		"spiffe://example.org/a/..": SpiffeIDDotSegment,
		"spiffe://example.org/a/":   SpiffeIDTrailingSlash,
	} {
		_, err := ParseSpiffeID(in)
		errCode(t, err, InvalidArgument, detail)
		var e *Error
		errors.As(ValidateSpiffeID(in), &e)
		if e == nil || e.Code != InvalidArgument || e.Detail != detail {
			t.Fatalf("ValidateSpiffeID(%q) = %v", in, e)
		}
	}
	if err := ValidateSpiffeID("spiffe://a.b/c"); err != nil {
		t.Fatal(err)
	}
	long := "spiffe://example.org/"
	for len(long) <= 2048 {
		long += "aaaaaaaaaa"
	}
	_, err = ParseSpiffeID(long)
	errCode(t, err, InvalidArgument, SpiffeIDTooLong)
}

func TestParseIstioIdentity(t *testing.T) {
	id, err := ParseIstioIdentity("spiffe://cluster.local/ns/bookinfo/sa/reviews")
	if err != nil {
		t.Fatal(err)
	}
	if id != (IstioIdentity{"cluster.local", "bookinfo", "reviews"}) {
		t.Fatalf("parsed %+v", id)
	}
	for _, bad := range []string{"", "spiffe://cluster.local/ns/a", "spiffe://td/sa/a/ns/b", "http://td/ns/a/sa/b"} {
		_, err := ParseIstioIdentity(bad)
		var e *Error
		if !errors.As(err, &e) || e.Code != InvalidArgument {
			t.Fatalf("ParseIstioIdentity(%q) = %v", bad, err)
		}
	}
}

type pki struct {
	ca, leaf, otherCA, otherLeaf *testCert
	now                          time.Time
}

func newPKI(t *testing.T) *pki {
	now := time.Now().Truncate(time.Second)
	p := &pki{now: now}
	p.ca = issue(t, nil, "spiffe://example.org", true, now.Add(-time.Hour), now.Add(24*time.Hour))
	p.leaf = issue(t, p.ca, "spiffe://example.org/ns/default/sa/web", false, now.Add(-time.Hour), now.Add(time.Hour))
	p.otherCA = issue(t, nil, "", true, now.Add(-time.Hour), now.Add(24*time.Hour))
	p.otherLeaf = issue(t, p.otherCA, "spiffe://other.org/ns/x/sa/y", false, now.Add(-time.Hour), now.Add(time.Hour))
	return p
}

func TestTrustBundlesAndVerify(t *testing.T) {
	p := newPKI(t)
	b, err := NewTrustBundles()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.SetPEM("example.org", p.ca.pem); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 1 {
		t.Fatalf("Len = %d", b.Len())
	}
	// Bad input changes nothing.
	errCode(t, b.SetPEM("example.org", []byte("not pem")), InvalidArgument, 0)
	errCode(t, b.SetPEM("Bad TD", p.ca.pem), InvalidArgument, int(SpiffeIDBadTrustDomainChar))
	if b.Len() != 1 {
		t.Fatalf("Len after bad input = %d", b.Len())
	}

	v, err := NewSVIDVerifier(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	id, err := v.VerifyPEM(p.leaf.pem)
	if err != nil {
		t.Fatal(err)
	}
	if id.ID != "spiffe://example.org/ns/default/sa/web" || id.TrustDomain != "example.org" {
		t.Fatalf("peer %+v", id)
	}
	id, err = v.VerifyDER([][]byte{p.leaf.der})
	if err != nil || id.Path != "/ns/default/sa/web" {
		t.Fatalf("VerifyDER: %+v %v", id, err)
	}
	_, err = v.VerifyDER(nil)
	errCode(t, err, Unauthenticated, SVIDEmptyChain)
	_, err = v.VerifyDER([][]byte{[]byte("junk")})
	errCode(t, err, Unauthenticated, SVIDMalformedCertificate)
	_, err = v.VerifyPEM(p.otherLeaf.pem)
	errCode(t, err, Unauthenticated, SVIDNoBundle)

	// other.org with the wrong CA: untrusted.
	if err := b.SetPEM("other.org", p.ca.pem); err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifyPEM(p.otherLeaf.pem)
	errCode(t, err, Unauthenticated, SVIDUntrusted)
	// The verifier sees the bundle update.
	if err := b.SetPEM("other.org", p.otherCA.pem); err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyPEM(p.otherLeaf.pem); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove("other.org"); err != nil {
		t.Fatal(err)
	}
	errCode(t, b.Remove("other.org"), NotFound, 0)
	_, err = v.VerifyPEM(p.otherLeaf.pem)
	errCode(t, err, Unauthenticated, SVIDNoBundle)

	// The verifier keeps the bundles alive after Close.
	b.Close()
	if _, err := v.VerifyPEM(p.leaf.pem); err != nil {
		t.Fatalf("after bundles.Close: %v", err)
	}
	errCode(t, b.SetPEM("example.org", p.ca.pem), FailedPrecondition, 0)
}

func TestVerifyPolicy(t *testing.T) {
	p := newPKI(t)
	b, err := NewTrustBundles()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.SetPEM("example.org", p.ca.pem); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPEM("other.org", p.otherCA.pem); err != nil {
		t.Fatal(err)
	}

	v, err := NewSVIDVerifier(b, &VerifyOptions{ExpectedIDs: []string{"spiffe://example.org/ns/default/sa/db"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifyPEM(p.leaf.pem)
	errCode(t, err, PermissionDenied, SVIDUnexpectedIdentity)
	v.Close()
	v.Close() // idempotent
	_, err = v.VerifyPEM(p.leaf.pem)
	errCode(t, err, FailedPrecondition, 0)

	v, err = NewSVIDVerifier(b, &VerifyOptions{TrustDomains: []string{"example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyPEM(p.leaf.pem); err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifyPEM(p.otherLeaf.pem)
	errCode(t, err, PermissionDenied, SVIDTrustDomainNotAllowed)
	v.Close()

	for at, detail := range map[time.Time]int{
		p.now.Add(2 * time.Hour):  SVIDExpired,
		p.now.Add(-2 * time.Hour): SVIDNotYetValid,
	} {
		v, err := NewSVIDVerifier(b, &VerifyOptions{Time: at})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.VerifyPEM(p.leaf.pem)
		errCode(t, err, Unauthenticated, detail)
		v.Close()
	}

	_, err = NewSVIDVerifier(b, &VerifyOptions{ExpectedIDs: []string{"spiffe://example.org/a//b"}})
	errCode(t, err, InvalidArgument, SpiffeIDEmptySegment)
	_, err = NewSVIDVerifier(nil, nil)
	errCode(t, err, InvalidArgument, 0)
}

func TestSpiffeBundleJSON(t *testing.T) {
	p := newPKI(t)
	key := map[string]any{
		"kty": "EC", "crv": "P-256", "use": "x509-svid",
		"x":   base64.RawURLEncoding.EncodeToString(p.ca.key.PublicKey.X.FillBytes(make([]byte, 32))),
		"y":   base64.RawURLEncoding.EncodeToString(p.ca.key.PublicKey.Y.FillBytes(make([]byte, 32))),
		"x5c": []string{base64.StdEncoding.EncodeToString(p.ca.der)},
	}
	bundle, _ := json.Marshal(map[string]any{"keys": []any{key}})
	b, err := NewTrustBundles()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.SetSPIFFEJSON("example.org", bundle); err != nil {
		t.Fatal(err)
	}
	v, err := NewSVIDVerifier(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.VerifyPEM(p.leaf.pem); err != nil {
		t.Fatal(err)
	}
	errCode(t, b.SetSPIFFEJSON("example.org", []byte(`{"keys": [`)), InvalidArgument, 0)
	errCode(t, b.SetSPIFFEJSON("example.org", []byte(`{}`)), InvalidArgument, 0)

	m, _ := json.Marshal(map[string]any{"trust_domains": map[string]any{
		"other.org": json.RawMessage(`{"keys": [{"use": "x509-svid", "kty": "EC", "x5c": ["` +
			base64.StdEncoding.EncodeToString(p.otherCA.der) + `"]}]}`),
	}})
	if err := b.SetBundleMapJSON(m); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 1 {
		t.Fatalf("bundle map replaces all: Len = %d", b.Len())
	}
	if _, err := v.VerifyPEM(p.otherLeaf.pem); err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifyPEM(p.leaf.pem)
	errCode(t, err, Unauthenticated, SVIDNoBundle)
	errCode(t, b.SetBundleMapJSON([]byte(`[1,2]`)), InvalidArgument, 0)
	if b.Len() != 1 {
		t.Fatalf("Len after bad map = %d", b.Len())
	}
}

func TestCredentials(t *testing.T) {
	p := newPKI(t)
	c, err := NewCredentialsPEM(append(append([]byte{}, p.leaf.pem...), p.ca.pem...), p.leaf.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id, err := c.ID()
	if err != nil || id.ID != "spiffe://example.org/ns/default/sa/web" {
		t.Fatalf("ID = %+v, %v", id, err)
	}
	nb, na, refresh := c.Validity()
	if !nb.Equal(p.leaf.cert.NotBefore) || !na.Equal(p.leaf.cert.NotAfter) {
		t.Fatalf("validity %v..%v, want %v..%v", nb, na, p.leaf.cert.NotBefore, p.leaf.cert.NotAfter)
	}
	if mid := nb.Add(na.Sub(nb) / 2); refresh.Sub(mid).Abs() > time.Second {
		t.Fatalf("refresh at %v, want about %v", refresh, mid)
	}

	// A key that does not match the leaf is refused and changes nothing.
	errCode(t, c.Rotate(p.otherLeaf.pem, p.leaf.keyPEM), InvalidArgument, 0)
	if id, _ := c.ID(); id.TrustDomain != "example.org" {
		t.Fatalf("failed rotate changed the ID to %v", id)
	}
	if err := c.Rotate(p.otherLeaf.pem, p.otherLeaf.keyPEM); err != nil {
		t.Fatal(err)
	}
	if id, _ := c.ID(); id.ID != "spiffe://other.org/ns/x/sa/y" {
		t.Fatalf("after rotate ID = %v", id)
	}

	_, err = NewCredentialsPEM(p.leaf.pem, []byte("junk"))
	errCode(t, err, InvalidArgument, 0)
	_, err = NewCredentialsPEM(p.ca.pem, p.ca.keyPEM) // CA leaf
	errCode(t, err, InvalidArgument, 0)
	noURI := issue(t, p.ca, "", false, p.now.Add(-time.Hour), p.now.Add(time.Hour))
	_, err = NewCredentialsPEM(noURI.pem, noURI.keyPEM)
	errCode(t, err, InvalidArgument, 0)

	c.Close()
	_, err = c.ID()
	errCode(t, err, FailedPrecondition, 0)
}

func TestVerifierSharedAcrossGoroutines(t *testing.T) {
	p := newPKI(t)
	b, err := NewTrustBundles()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.SetPEM("example.org", p.ca.pem); err != nil {
		t.Fatal(err)
	}
	v, err := NewSVIDVerifier(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func(g int) {
			var err error
			for i := 0; i < 50 && err == nil; i++ {
				if g == 0 {
					err = b.SetPEM("example.org", p.ca.pem) // swaps in a new snapshot
				} else {
					_, err = v.VerifyDER([][]byte{p.leaf.der})
				}
			}
			errs <- err
		}(g)
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifierClock(t *testing.T) {
	p := newPKI(t)
	b, err := NewTrustBundles()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.SetPEM("example.org", p.ca.pem); err != nil {
		t.Fatal(err)
	}
	var now atomic.Int64
	now.Store(p.now.Unix())
	v, err := NewSVIDVerifier(b, &VerifyOptions{Clock: func() time.Time { return time.Unix(now.Load(), 0) }})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.VerifyPEM(p.leaf.pem); err != nil {
		t.Fatal(err)
	}
	now.Store(p.now.Add(2 * time.Hour).Unix()) // the leaf lives one hour
	_, err = v.VerifyPEM(p.leaf.pem)
	errCode(t, err, Unauthenticated, SVIDExpired)
	now.Store(p.now.Unix())
	if _, err := v.VerifyPEM(p.leaf.pem); err != nil {
		t.Fatal(err)
	}
}
