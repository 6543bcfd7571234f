package ambient_test

import (
	"fmt"
	"io"
	"log"
	"os"

	"ambient.dev/ambient"
)

// A turnkey HBONE server that lets one workload in, and a client tunnel
// through it. (Compiled, not run: it needs certificates on disk.)
func ExampleLoop_NewHBONEServer() {
	serverTLS, err := ambient.NewHBONETLSFromFiles(ambient.HBONERoleServer, "db.pem", "db.key", "bundle.pem")
	if err != nil {
		log.Fatal(err)
	}
	clientTLS, err := ambient.NewHBONETLSFromFiles(ambient.HBONERoleClient, "web.pem", "web.key", "bundle.pem")
	if err != nil {
		log.Fatal(err)
	}
	loop, err := ambient.NewLoop()
	if err != nil {
		log.Fatal(err)
	}
	defer loop.Close()
	accessLog := func(level ambient.LogLevel, component, message string) {
		if component == "access" {
			fmt.Fprintln(os.Stderr, message) // "connection complete src.addr=..."
		}
	}
	srv, err := loop.NewHBONEServer(serverTLS, "127.0.0.1:15008",
		[]string{"spiffe://cluster.local/ns/shop/sa/web"}, accessLog)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	client, err := loop.NewHBONEClient(clientTLS, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	tun, err := client.Dial(srv.Addr(), "127.0.0.1:9080", []string{"spiffe://cluster.local/ns/shop/sa/db"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(tun.Conn, "GET / HTTP/1.0\r\n\r\n")
	reply, _ := io.ReadAll(tun.Conn)
	tun.Conn.Close()
	res := tun.Wait() // res.HTTPStatus: 200, or 401 for a client not allowed
	fmt.Println(res.HTTPStatus, res.Err, len(reply))
}
