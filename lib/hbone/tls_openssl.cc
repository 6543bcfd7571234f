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

constexpr char kSuites[] = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384";

absl::Status RestrictContext(SSL_CTX* ctx) {
  if (SSL_CTX_set_ciphersuites(ctx, kSuites) != 1 || SSL_CTX_set_num_tickets(ctx, 0) != 1) {
    ERR_clear_error();
    return absl::InternalError("cannot restrict TLS 1.3 to the AES-GCM suites");
  }
  return absl::OkStatus();
}

// OnlyGcmSuites says whether `ssl` already offers no TLS 1.3 suite but the
// two AES-GCM ones (as every SSL of a prepared SSL_CTX does): setting the list
// again costs OpenSSL 3.0 a parse and algorithm fetches per connection.
bool OnlyGcmSuites(const SSL* ssl) {
  STACK_OF(SSL_CIPHER)* ciphers = SSL_get_ciphers(ssl);
  int n = ciphers == nullptr ? 0 : sk_SSL_CIPHER_num(ciphers);
  for (int i = 0; i < n; ++i) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(ciphers, i);
    uint16_t id = SSL_CIPHER_get_protocol_id(c);
    if ((id >> 8) == 0x13 && id != 0x1301 && id != 0x1302) return false;  // a TLS 1.3 suite
  }
  return true;
}

absl::Status RestrictSession(SSL* ssl) {
  if (OnlyGcmSuites(ssl) && SSL_get_num_tickets(ssl) == 0) return absl::OkStatus();
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
