package ambient

/*
#include <stdlib.h>
#include "ambient/ambient.h"
*/
import "C"

// SocketAddress is an IP address with a port as libambient reads and prints
// it (ambient/c/address.h): the one set of address rules every layer of the
// library, ambientctl and both bindings use.
type SocketAddress struct {
	Text       string // canonical "198.18.0.1:80" or "[2001:db8::1]:80"
	IP         string // canonical IP alone: "198.18.0.1" or "2001:db8::1"
	Port       uint16
	IPVersion  int  // 4 or 6
	IsV4Mapped bool // an IPv6 ::ffff:a.b.c.d address (kept as IPv6)
}

// String returns the canonical text.
func (a SocketAddress) String() string { return a.Text }

// cText passes s to C as a pointer and a length (NUL bytes inside included,
// so the library can refuse them); nil for "".
func cText(s string) (*C.char, C.size_t, func()) {
	if s == "" {
		return nil, 0, func() {}
	}
	p := C.CBytes([]byte(s))
	return (*C.char)(p), C.size_t(len(s)), func() { C.free(p) }
}

// ParseSocketAddress reads "IPv4:PORT" or "[IPv6]:PORT" (port 0-65535; no
// host names, no zone ids) with the library's rules. The error is an *Error
// (InvalidArgument) carrying the library's message, e.g.
// `invalid IP address "localhost"`.
func ParseSocketAddress(s string) (SocketAddress, error) {
	p, n, free := cText(s)
	defer free()
	var a *C.ambient_socket_address
	if err := takeError(C.ambient_socket_address_parse(p, n, &a)); err != nil {
		return SocketAddress{}, err
	}
	return takeSocketAddress(a), nil
}

// ParseIP reads a bare IPv4 or IPv6 address (no brackets, zone or port) and
// gives it port, with the library's rules.
func ParseIP(ip string, port uint16) (SocketAddress, error) {
	p, n, free := cText(ip)
	defer free()
	var a *C.ambient_socket_address
	if err := takeError(C.ambient_socket_address_parse_ip(p, n, C.uint16_t(port), &a)); err != nil {
		return SocketAddress{}, err
	}
	return takeSocketAddress(a), nil
}

// CheckAuthority reports whether s is a CONNECT :authority the library
// accepts ("IPv4:PORT", "[IPv6]:PORT" or "host:PORT", port 1-65535): nil, or
// an *Error (InvalidArgument) with the reason.
func CheckAuthority(s string) error {
	p, n, free := cText(s)
	defer free()
	return takeError(C.ambient_hbone_authority_check(p, n))
}

// takeSocketAddress copies a and frees it.
func takeSocketAddress(a *C.ambient_socket_address) SocketAddress {
	defer C.ambient_socket_address_free(a)
	return SocketAddress{
		Text:       C.GoString(C.ambient_socket_address_get0_text(a)),
		IP:         C.GoString(C.ambient_socket_address_get0_ip(a)),
		Port:       uint16(C.ambient_socket_address_port(a)),
		IPVersion:  int(C.ambient_socket_address_ip_version(a)),
		IsV4Mapped: C.ambient_socket_address_is_v4_mapped(a) != 0,
	}
}
