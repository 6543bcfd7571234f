// HBONE's TLS settings on BoringSSL, whose TLS 1.3 suites are fixed (AES-GCM
// first when the CPU has AES instructions, as it has here) and whose server
// sends no ticket once SSL_OP_NO_TICKET is set.
#include "hbone/tls_backend.h"

#if !defined(OPENSSL_IS_BORINGSSL)
#error "tls_boringssl.cc must be compiled against BoringSSL's headers"
#endif

namespace ambient::hbone::internal {

absl::Status RestrictContext(SSL_CTX*) { return absl::OkStatus(); }
absl::Status RestrictSession(SSL*) { return absl::OkStatus(); }

tls::UniquePtr<X509> PeerCertificate(const SSL* ssl) {
  return tls::UniquePtr<X509>(SSL_get_peer_certificate(ssl));
}

}  // namespace ambient::hbone::internal
