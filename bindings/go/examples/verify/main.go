// Command verify checks an X509-SVID chain against a trust bundle and prints
// the SPIFFE ID it proves, like `ambientctl spiffe verify`:
//
//	go run ./examples/verify --bundle ca.pem --chain svid.pem [--trust-domain TD] [--expect ID]...
//
// Exit status 0 with the ID on stdout, 1 with the reason on stderr.
package main

import (
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"strings"

	"ambient.dev/ambient"
)

type ids []string

func (i *ids) String() string     { return strings.Join(*i, ",") }
func (i *ids) Set(v string) error { *i = append(*i, v); return nil }

func main() {
	bundlePath := flag.String("bundle", "", "trust anchors of the trust domain (PEM)")
	chainPath := flag.String("chain", "", "the SVID chain to verify (PEM, leaf first)")
	trustDomain := flag.String("trust-domain", "", "trust domain of --bundle (default: the leaf's)")
	var expect ids
	flag.Var(&expect, "expect", "a SPIFFE ID the leaf must have (repeatable)")
	flag.Parse()
	if *bundlePath == "" || *chainPath == "" {
		fmt.Fprintln(os.Stderr, "verify: --bundle and --chain are required")
		os.Exit(2)
	}
	if err := run(*bundlePath, *chainPath, *trustDomain, expect); err != nil {
		fmt.Fprintln(os.Stderr, "verify:", err)
		os.Exit(1)
	}
}

func run(bundlePath, chainPath, trustDomain string, expect []string) error {
	bundlePEM, err := os.ReadFile(bundlePath)
	if err != nil {
		return err
	}
	chainPEM, err := os.ReadFile(chainPath)
	if err != nil {
		return err
	}
	if trustDomain == "" {
		// The bundle belongs to the leaf's trust domain: learn it from the leaf
		// first (a verifier over every trust domain would accept any bundle).
		trustDomain, err = leafTrustDomain(chainPEM)
		if err != nil {
			return err
		}
	}
	bundles, err := ambient.NewTrustBundles()
	if err != nil {
		return err
	}
	defer bundles.Close()
	if err := bundles.SetPEM(trustDomain, bundlePEM); err != nil {
		return err
	}
	v, err := ambient.NewSVIDVerifier(bundles, &ambient.VerifyOptions{ExpectedIDs: expect})
	if err != nil {
		return err
	}
	defer v.Close()
	id, err := v.VerifyPEM(chainPEM)
	if err != nil {
		return err
	}
	fmt.Println(id)
	return nil
}

// leafTrustDomain reads the trust domain from the first certificate's URI SAN.
func leafTrustDomain(chainPEM []byte) (string, error) {
	block, _ := pem.Decode(chainPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", fmt.Errorf("--chain holds no PEM certificate")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", err
	}
	if len(leaf.URIs) != 1 {
		return "", fmt.Errorf("the leaf has %d URI SANs, an SVID has one", len(leaf.URIs))
	}
	id, err := ambient.ParseSpiffeID(leaf.URIs[0].String())
	if err != nil {
		return "", err
	}
	return id.TrustDomain, nil
}
