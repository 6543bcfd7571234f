// HBONE's TLS settings on OpenSSL 3: its TLS 1.3 default list includes
// ChaCha20-Poly1305, which HBONE does not accept, and a TLS 1.3 server sends
// two session tickets unless told not to (SSL_OP_NO_TICKET stops only the
// stateless kind).
#include <openssl/err.h>

#include "hbone/tls_backend.h"

#if defined(OPENSSL_IS_BORINGSSL)
#error "tls_openssl.cc must be compiled against OpenSSL 3's headers"
#endif

namespace ambient::hbone::internal {
namespace {
constexpr char kSuites[] = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384";
}  // namespace

absl::Status RestrictContext(SSL_CTX* ctx) {
  if (SSL_CTX_set_ciphersuites(ctx, kSuites) != 1 || SSL_CTX_set_num_tickets(ctx, 0) != 1) {
    ERR_clear_error();
    return absl::InternalError("cannot restrict TLS 1.3 to the AES-GCM suites");
  }
  return absl::OkStatus();
}

absl::Status RestrictSession(SSL* ssl) {
  if (SSL_set_ciphersuites(ssl, kSuites) != 1 || SSL_set_num_tickets(ssl, 0) != 1) {
    ERR_clear_error();
    return absl::InternalError("cannot restrict TLS 1.3 to the AES-GCM suites");
  }
  return absl::OkStatus();
}

tls::UniquePtr<X509> PeerCertificate(const SSL* ssl) {
  return tls::UniquePtr<X509>(SSL_get1_peer_certificate(ssl));
}

}  // namespace ambient::hbone::internal
