// Package ambient is the Go binding of libambient, the Istio ambient data
// plane library. It wraps the C ABI in include/ambient/ambient.h.
//
// Building: cgo finds the headers and the library with pkg-config
// (`#cgo pkg-config: ambient`). With ambient installed under a prefix:
//
//	PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig go build
//
// and the program finds libambient at run time through the rpath ambient.pc
// adds (no LD_LIBRARY_PATH). Against a build tree, PKG_CONFIG_PATH=BUILD/pkgconfig
// (ambient-uninstalled.pc). See bindings/README.md.
//
// Every object that holds a C handle has a Close method; a finalizer closes
// what was forgotten, but Close is the way to release it promptly.
package ambient

/*
#cgo pkg-config: ambient
#include <stdlib.h>
#include "ambient/ambient.h"

#if AMBIENT_VERSION_NUM < AMBIENT_VERSION_CHECK(0, 1, 0)
#error "this binding needs libambient headers 0.1.0 or newer"
#endif
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Code is the category of a failure, as ambient_code in the C ABI.
type Code int

// The codes an Error can carry.
const (
	OK                 Code = C.AMBIENT_OK
	InvalidArgument    Code = C.AMBIENT_ERR_INVALID_ARGUMENT
	NotFound           Code = C.AMBIENT_ERR_NOT_FOUND
	AlreadyExists      Code = C.AMBIENT_ERR_ALREADY_EXISTS
	PermissionDenied   Code = C.AMBIENT_ERR_PERMISSION_DENIED
	Unauthenticated    Code = C.AMBIENT_ERR_UNAUTHENTICATED
	FailedPrecondition Code = C.AMBIENT_ERR_FAILED_PRECONDITION
	OutOfRange         Code = C.AMBIENT_ERR_OUT_OF_RANGE
	Unavailable        Code = C.AMBIENT_ERR_UNAVAILABLE
	DeadlineExceeded   Code = C.AMBIENT_ERR_DEADLINE_EXCEEDED
	ResourceExhausted  Code = C.AMBIENT_ERR_RESOURCE_EXHAUSTED
	Cancelled          Code = C.AMBIENT_ERR_CANCELLED
	Unimplemented      Code = C.AMBIENT_ERR_UNIMPLEMENTED
	Internal           Code = C.AMBIENT_ERR_INTERNAL
	Aborted            Code = C.AMBIENT_ERR_ABORTED
	DataLoss           Code = C.AMBIENT_ERR_DATA_LOSS
	Unknown            Code = C.AMBIENT_ERR_UNKNOWN
	WouldBlock         Code = C.AMBIENT_ERR_WOULD_BLOCK
)

// String names the code as ambient_strerror does.
func (c Code) String() string { return C.GoString(C.ambient_strerror(C.int(c))) }

// Error is a failure reported by libambient.
type Error struct {
	Code    Code   // category
	Detail  int    // layer-specific detail code, 0 when none
	Message string // what went wrong, and where
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code.String()
	}
	return e.Message
}

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, &ambient.Error{Code: ambient.NotFound}) matches any NotFound
// failure, wrapped or not. Detail and Message are not compared (use errors.As
// to read them).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && e != nil && t.Code == e.Code
}

// takeError converts an owned ambient_error* into a Go error and frees it.
// A NULL pointer means success.
func takeError(err *C.ambient_error) error {
	if err == nil {
		return nil
	}
	defer C.ambient_error_free(err)
	return &Error{
		Code:    Code(C.ambient_error_code(err)),
		Detail:  int(C.ambient_error_detail(err)),
		Message: C.GoString(C.ambient_error_message(err)),
	}
}

// codeError converts a hot-path return value (>= 0 success, < 0 ambient_code)
// into an error.
func codeError(rc C.int) error {
	if rc >= 0 {
		return nil
	}
	return &Error{Code: Code(rc)}
}

// Version returns the version of the loaded libambient, such as "0.1.0".
func Version() string { return C.GoString(C.ambient_version()) }

// TLSBackend names the TLS library the loaded libambient was built with:
// "boringssl" or "openssl".
func TLSBackend() string { return C.GoString(C.ambient_tls_backend()) }

// HeaderVersion returns the version of the headers this binding was built with.
func HeaderVersion() string {
	return fmt.Sprintf("%d.%d.%d", C.AMBIENT_VERSION_MAJOR, C.AMBIENT_VERSION_MINOR, C.AMBIENT_VERSION_PATCH)
}

// CheckRuntime reports an error when the TLS library bound to libambient is
// not the one it was built with (the other library, loaded into the process
// first, took its symbols).
func CheckRuntime() error { return takeError(C.ambient_check_runtime()) }

// copiedText reads a string the C ABI copies into the caller's buffer
// (snprintf-style: the call returns the full length). Text such as counters
// may grow between the size query and the copy, so it asks again until the
// text fits. Called on the thread the C call requires.
func copiedText(get func(buf *C.char, size C.size_t) C.size_t) string {
	n := get(nil, 0)
	for {
		buf := make([]byte, int(n)+1)
		m := get((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
		if int(m) < len(buf) {
			return string(buf[:m])
		}
		n = m
	}
}
