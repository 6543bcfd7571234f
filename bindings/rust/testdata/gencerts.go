// gencerts writes a small test PKI for the Rust binding's tests into the
// directory given as its only argument. Standard library only; run with
// `go run gencerts.go DIR` (offline). Test use only: the keys are fresh
// each run and the validity is fixed (leaves 2021-01-01 .. 2099-01-01,
// CAs 2020-01-01 .. 2100-01-01) so tests can pin the verification time.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

type issued struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

var serial int64

func issue(parent *issued, uri string, isCA bool, from, to time.Time) *issued {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	serial++
	t := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{Organization: []string{"ambient rust binding test"}, CommonName: fmt.Sprintf("test %d", serial)},
		NotBefore:             from,
		NotAfter:              to,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	if isCA {
		t.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		t.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	if uri != "" {
		u, err := url.Parse(uri)
		must(err)
		t.URIs = []*url.URL{u}
	}
	signer, signerKey := t, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, t, signer, &key.PublicKey, signerKey)
	must(err)
	cert, err := x509.ParseCertificate(der)
	must(err)
	return &issued{cert: cert, key: key, der: der}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "gencerts:", err)
		os.Exit(1)
	}
}

func write(dir, name string, data []byte) {
	must(os.WriteFile(filepath.Join(dir, name), data, 0o600))
}

func certPEM(c *issued) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der})
}

func keyPEM(c *issued) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	must(err)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func bundle(ca *issued) map[string]any {
	return map[string]any{"keys": []any{map[string]any{
		"use": "x509-svid", "kty": "EC", "crv": "P-256",
		"x":   base64.RawURLEncoding.EncodeToString(ca.key.PublicKey.X.FillBytes(make([]byte, 32))),
		"y":   base64.RawURLEncoding.EncodeToString(ca.key.PublicKey.Y.FillBytes(make([]byte, 32))),
		"x5c": []string{base64.StdEncoding.EncodeToString(ca.der)},
	}}}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gencerts DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	caFrom := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	caTo := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	from := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)

	ca := issue(nil, "spiffe://example.org", true, caFrom, caTo)
	leaf := issue(ca, "spiffe://example.org/ns/default/sa/web", false, from, to)
	other := issue(nil, "", true, caFrom, caTo)
	otherLeaf := issue(other, "spiffe://other.org/ns/x/sa/y", false, from, to)
	noURI := issue(ca, "", false, from, to)
	db := issue(ca, "spiffe://example.org/ns/default/sa/db", false, from, to)
	clCA := issue(nil, "spiffe://cluster.local", true, caFrom, caTo)
	clWeb := issue(clCA, "spiffe://cluster.local/ns/shop/sa/web", false, from, to)

	write(dir, "ca.pem", certPEM(ca))
	write(dir, "ca.key", keyPEM(ca))
	write(dir, "leaf.pem", certPEM(leaf))
	write(dir, "leaf.der", leaf.der)
	write(dir, "leaf.key", keyPEM(leaf))
	write(dir, "other_ca.pem", certPEM(other))
	write(dir, "other_leaf.pem", certPEM(otherLeaf))
	write(dir, "other_leaf.key", keyPEM(otherLeaf))
	write(dir, "no_uri.pem", certPEM(noURI))
	write(dir, "no_uri.key", keyPEM(noURI))
	write(dir, "db.pem", certPEM(db))
	write(dir, "db.key", keyPEM(db))
	write(dir, "cl_ca.pem", certPEM(clCA))
	write(dir, "cl_web.pem", certPEM(clWeb))
	write(dir, "cl_web.key", keyPEM(clWeb))
	b, err := json.Marshal(bundle(ca))
	must(err)
	write(dir, "bundle.json", b)
	m, err := json.Marshal(map[string]any{"trust_domains": map[string]any{"other.org": bundle(other)}})
	must(err)
	write(dir, "bundle_map.json", m)
}
