// Internal to lib/hbone: what differs between the TLS libraries for the HBONE
// handshake. One of tls_boringssl.cc / tls_openssl.cc is built (AMBIENT_TLS).
#ifndef AMBIENT_LIB_HBONE_TLS_BACKEND_H_
#define AMBIENT_LIB_HBONE_TLS_BACKEND_H_

#include "absl/status/status.h"
#include "ambient/base/tls.h"

namespace ambient::hbone::internal {

// RestrictContext applies what HBONE needs beyond the shared settings (TLS
// 1.3 only, no tickets, no session cache): only the AES-GCM suites, and no
// session tickets sent by a TLS 1.3 server.
absl::Status RestrictContext(SSL_CTX* ctx);
// RestrictSession is RestrictContext for one connection.
absl::Status RestrictSession(SSL* ssl);

// PeerCertificate returns the peer's leaf certificate (a new reference), or
// null.
tls::UniquePtr<X509> PeerCertificate(const SSL* ssl);

}  // namespace ambient::hbone::internal

#endif  // AMBIENT_LIB_HBONE_TLS_BACKEND_H_
