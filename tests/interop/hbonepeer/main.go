// hbonepeer is an independent HBONE peer written only with Go's standard
// library (net/http's HTTP/2 over crypto/tls), used by ambient's interop
// tests and benchmarks. It is test tooling, not part of the library.
//
//	hbonepeer server --listen ADDR --cert F --key F --bundle F
//	    accept HTTP/2 CONNECT over mTLS and relay each to its :authority
//	hbonepeer client --via ADDR --authority HOST:PORT --cert F --key F --bundle F [--expect ID]
//	    carry stdin/stdout through one CONNECT stream
//	hbonepeer forward --listen ADDR --via ADDR --authority HOST:PORT (+ TLS flags)
//	    one CONNECT stream per accepted TCP connection, on a shared connection
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
)

type flags struct {
	listen, via, authority, cert, key, bundle, expect string
}

func parse(args []string) flags {
	var f flags
	fs := flag.NewFlagSet("hbonepeer", flag.ExitOnError)
	fs.StringVar(&f.listen, "listen", "", "listen address")
	fs.StringVar(&f.via, "via", "", "HBONE server address")
	fs.StringVar(&f.authority, "authority", "", "CONNECT authority")
	fs.StringVar(&f.cert, "cert", "", "certificate chain PEM")
	fs.StringVar(&f.key, "key", "", "private key PEM")
	fs.StringVar(&f.bundle, "bundle", "", "trust anchors PEM")
	fs.StringVar(&f.expect, "expect", "", "expected server SPIFFE ID")
	fs.Parse(args)
	return f
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "hbonepeer: "+format+"\n", a...)
	os.Exit(1)
}

func loadTLS(f flags) (tls.Certificate, *x509.CertPool) {
	cert, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		fail("credentials: %v", err)
	}
	pem, err := os.ReadFile(f.bundle)
	if err != nil {
		fail("bundle: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fail("bundle: no certificates")
	}
	return cert, pool
}

// verifySpiffe checks the chain against roots (any name) and, when expect is
// set, that the leaf carries it as a URI SAN.
func verifySpiffe(roots *x509.CertPool, expect string, usage x509.ExtKeyUsage) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("no peer certificate")
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, r := range raw {
			c, err := x509.ParseCertificate(r)
			if err != nil {
				return err
			}
			certs[i] = c
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			return err
		}
		if expect == "" {
			return nil
		}
		for _, u := range certs[0].URIs {
			if u.String() == expect {
				return nil
			}
		}
		return fmt.Errorf("peer identity is not %s", expect)
	}
}

type flushWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

func (fw flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	fw.f.Flush()
	return n, err
}

func server(f flags) {
	cert, roots := loadTLS(f)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusBadRequest)
			return
		}
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer up.Close()
		fl := w.(http.Flusher)
		w.WriteHeader(http.StatusOK)
		fl.Flush()
		done := make(chan struct{})
		go func() {
			io.Copy(up, r.Body)
			up.(*net.TCPConn).CloseWrite()
			close(done)
		}()
		buf := make([]byte, 256*1024)
		io.CopyBuffer(flushWriter{w, fl}, up, buf)
		<-done
	})
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		fail("listen: %v", err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	srv := &http.Server{
		Handler: handler,
		TLSConfig: &tls.Config{
			MinVersion:            tls.VersionTLS13,
			Certificates:          []tls.Certificate{cert},
			ClientAuth:            tls.RequireAnyClientCert,
			VerifyPeerCertificate: verifySpiffe(roots, "", x509.ExtKeyUsageClientAuth),
			NextProtos:            []string{"h2"},
		},
	}
	if err := srv.ServeTLS(ln, "", ""); err != nil {
		fail("serve: %v", err)
	}
}

func transport(f flags) *http.Transport {
	cert, roots := loadTLS(f)
	return &http.Transport{
		ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{
			MinVersion:            tls.VersionTLS13,
			Certificates:          []tls.Certificate{cert},
			InsecureSkipVerify:    true, // replaced by verifySpiffe: SVIDs carry no DNS names
			VerifyPeerCertificate: verifySpiffe(roots, f.expect, x509.ExtKeyUsageServerAuth),
			NextProtos:            []string{"h2"},
		},
		MaxIdleConnsPerHost: 100,
	}
}

// tunnel carries in -> stream and stream -> out; returns after both ended.
func tunnel(tr *http.Transport, f flags, in io.Reader, out io.Writer, closeWrite func()) error {
	pr, pw := io.Pipe()
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Scheme: "https", Host: f.via},
		Host:   f.authority,
		Header: http.Header{},
		Body:   pr,
	}
	req = req.WithContext(context.Background())
	go func() {
		buf := make([]byte, 256*1024)
		_, err := io.CopyBuffer(pw, in, buf)
		pw.CloseWithError(err)
	}()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("server answered %d", resp.StatusCode)
	}
	buf := make([]byte, 256*1024)
	_, err = io.CopyBuffer(out, resp.Body, buf)
	if closeWrite != nil {
		closeWrite()
	}
	return err
}

func client(f flags) {
	if err := tunnel(transport(f), f, os.Stdin, os.Stdout, nil); err != nil {
		fail("%v", err)
	}
}

func forward(f flags) {
	tr := transport(f)
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		fail("listen: %v", err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	var wg sync.WaitGroup
	for {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		c.(*net.TCPConn).SetNoDelay(true)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			tc := c.(*net.TCPConn)
			if err := tunnel(tr, f, c, c, func() { tc.CloseWrite() }); err != nil &&
				!strings.Contains(err.Error(), "closed") {
				fmt.Fprintf(os.Stderr, "hbonepeer: %v\n", err)
			}
		}()
	}
	wg.Wait()
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: hbonepeer server|client|forward FLAGS")
	}
	f := parse(os.Args[2:])
	switch os.Args[1] {
	case "server":
		server(f)
	case "client":
		client(f)
	case "forward":
		forward(f)
	default:
		fail("unknown mode %q", os.Args[1])
	}
}
