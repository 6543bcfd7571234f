// Command tunnel carries stdin and stdout through one HBONE tunnel, like
// `ambientctl hbone connect`:
//
//	go run ./examples/tunnel --via 127.0.0.1:15008 --authority 127.0.0.1:8080 \
//	    --cert svid.pem --key svid.key --bundle ca.pem [--expect ID]...
//
// Exit status 0 after a clean end, 1 with the reason on stderr.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"ambient.dev/ambient"
)

type ids []string

func (i *ids) String() string     { return strings.Join(*i, ",") }
func (i *ids) Set(v string) error { *i = append(*i, v); return nil }

func main() {
	via := flag.String("via", "", "the HBONE server, a numeric ip:port")
	authority := flag.String("authority", "", "where the server connects, host:port")
	cert := flag.String("cert", "", "our SVID chain (PEM)")
	key := flag.String("key", "", "its private key (PEM)")
	bundle := flag.String("bundle", "", "trust anchors of our trust domain (PEM)")
	var expect ids
	flag.Var(&expect, "expect", "a SPIFFE ID the server may have (repeatable)")
	flag.Parse()
	if *via == "" || *authority == "" || *cert == "" || *key == "" || *bundle == "" {
		fmt.Fprintln(os.Stderr, "tunnel: --via, --authority, --cert, --key and --bundle are required")
		os.Exit(2)
	}
	if err := run(*via, *authority, *cert, *key, *bundle, expect); err != nil {
		fmt.Fprintln(os.Stderr, "tunnel:", err)
		os.Exit(1)
	}
}

func run(via, authority, cert, key, bundle string, expect []string) error {
	tls, err := ambient.NewHBONETLSFromFiles(ambient.HBONERoleClient, cert, key, bundle)
	if err != nil {
		return err
	}
	defer tls.Close()
	loop, err := ambient.NewLoop()
	if err != nil {
		return err
	}
	defer loop.Close()
	client, err := loop.NewHBONEClient(tls, nil)
	if err != nil {
		return err
	}
	defer client.Close()
	tun, err := client.Dial(via, authority, expect)
	if err != nil {
		return err
	}
	go func() {
		io.Copy(tun.Conn, os.Stdin)
		if c, ok := tun.Conn.(interface{ CloseWrite() error }); ok {
			c.CloseWrite()
		}
	}()
	io.Copy(os.Stdout, tun.Conn)
	res := tun.Wait()
	if res.Err != nil {
		return fmt.Errorf("HTTP %d: %w", res.HTTPStatus, res.Err)
	}
	return nil
}
