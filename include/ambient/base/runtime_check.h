// ambient/base/runtime_check.h: is the TLS library bound to us the one we
// were built with?
//
// ambient is built against BoringSSL (the default) or OpenSSL 3
// (-DAMBIENT_TLS=openssl), and the two export the same symbol names. If the
// other one is loaded into the process ahead of ambient, the dynamic loader
// binds ambient's calls to it without any warning, and nothing works as it
// should. Layers that use TLS or X.509 call EnsureTlsBackend() when their
// first object is made.
#ifndef AMBIENT_BASE_RUNTIME_CHECK_H_
#define AMBIENT_BASE_RUNTIME_CHECK_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ambient {

// EnsureTlsBackend returns OK when the libcrypto bound to this library is the
// one it was built with (BoringSSL, or OpenSSL 3.x), else FailedPrecondition
// with a message naming what was bound instead and how to fix it. The answer
// is computed once per process. Thread-safe.
absl::Status EnsureTlsBackend();

// TlsBackend names the TLS library this library was built with: "boringssl"
// or "openssl".
absl::string_view TlsBackend();

// BoundTlsLibrary is the version text of the libcrypto actually bound at run
// time (OpenSSL_version(OPENSSL_VERSION)), e.g. "BoringSSL" or
// "OpenSSL 3.0.19 27 Jan 2026".
absl::string_view BoundTlsLibrary();

}  // namespace ambient

#endif  // AMBIENT_BASE_RUNTIME_CHECK_H_
