// The identity layer on OpenSSL 3: the chain as a stack of intermediates for
// SSL_use_cert_and_key, and peer verification through the SSL_CTX's
// certificate-verification callback, which replaces OpenSSL's own path
// building for connections ambient verifies.
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include "absl/container/inlined_vector.h"
#include "ambient/base/status.h"
#include "identity/tls_backend.h"

#if defined(OPENSSL_IS_BORINGSSL)
#error "tls_openssl.cc must be compiled against OpenSSL 3's headers"
#endif

namespace ambient::identity::internal {

struct NativeChain {
  tls::UniquePtr<STACK_OF(X509)> intermediates;  // the chain after the leaf
};

absl::StatusOr<std::shared_ptr<const NativeChain>> MakeNativeChain(
    const std::vector<PemCertificate>& chain) {
  auto out = std::make_shared<NativeChain>();
  out->intermediates.reset(sk_X509_new_null());
  if (out->intermediates == nullptr) return absl::ResourceExhaustedError("out of memory");
  for (size_t i = 1; i < chain.size(); ++i) {
    if (!sk_X509_push(out->intermediates.get(), chain[i].cert.get())) {
      return absl::ResourceExhaustedError("out of memory");
    }
    X509_up_ref(chain[i].cert.get());  // the stack owns one reference
  }
  return out;
}

bool UseChainAndKey(SSL* ssl, const Credentials& creds) {
  const NativeChain& chain = creds.native_chain();
  if (SSL_use_cert_and_key(ssl, creds.leaf(), creds.private_key(), chain.intermediates.get(),
                           /*override=*/1) == 1) {
    return true;
  }
  ERR_clear_error();
  return false;
}

bool IsP256(EVP_PKEY* key) {
  char name[80];
  size_t len = 0;
  if (EVP_PKEY_get_group_name(key, name, sizeof(name), &len) != 1) {
    ERR_clear_error();
    return false;
  }
  return OBJ_txt2nid(name) == NID_X9_62_prime256v1;
}

namespace {

// The X509_V_ERR code whose alert (OpenSSL's table) is closest to the one
// the BoringSSL build sends (AlertFor). OpenSSL has no code that maps to
// access_denied: an identity or trust domain refused here gets
// handshake_failure.
int VerifyErrorFor(const absl::Status& failure) {
  if (DetailOf(failure) == 0) return X509_V_ERR_UNSPECIFIED;  // internal_error
  switch (static_cast<SvidError>(DetailOf(failure))) {
    case SvidError::kExpired:
      return X509_V_ERR_CERT_HAS_EXPIRED;  // certificate_expired
    case SvidError::kNotYetValid:
      return X509_V_ERR_CERT_NOT_YET_VALID;  // bad_certificate
    case SvidError::kUntrusted:
    case SvidError::kNoBundle:
      return X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;  // unknown_ca
    case SvidError::kUnexpectedIdentity:
    case SvidError::kTrustDomainNotAllowed:
      return X509_V_ERR_APPLICATION_VERIFICATION;  // handshake_failure
    case SvidError::kBadSignature:
      return X509_V_ERR_CERT_SIGNATURE_FAILURE;  // decrypt_error
    default:
      return X509_V_ERR_CERT_REJECTED;  // bad_certificate
  }
}

int CertVerifyCallback(X509_STORE_CTX* sctx, void*) {
  try {
    auto* ssl =
        static_cast<SSL*>(X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
    // A connection ambient does not verify (a host's own SSL on an SSL_CTX
    // that got the hook through InstallVerifier(SSL*)) keeps OpenSSL's own
    // verification.
    if (ssl == nullptr || !HasVerifier(ssl)) return X509_verify_cert(sctx);
    absl::Status st = VerifyPeer(ssl, [sctx](const SvidVerifier& verifier) {
      // The peer's chain as sent, leaf first; OpenSSL passes it whole as
      // the untrusted set.
      X509* leaf = X509_STORE_CTX_get0_cert(sctx);
      STACK_OF(X509)* sent = X509_STORE_CTX_get0_untrusted(sctx);
      absl::InlinedVector<X509*, 4> chain;
      if (leaf != nullptr) chain.push_back(leaf);
      int n = sent == nullptr ? 0 : sk_X509_num(sent);
      for (int i = 0; i < n; ++i) {
        X509* c = sk_X509_value(sent, i);
        if (i == 0 && c == leaf) continue;
        chain.push_back(c);
      }
      return verifier.Verify(absl::MakeConstSpan(chain));
    });
    if (st.ok()) {
      X509_STORE_CTX_set_error(sctx, X509_V_OK);
      return 1;
    }
    X509_STORE_CTX_set_error(sctx, VerifyErrorFor(st));
    return 0;
  } catch (...) {
    X509_STORE_CTX_set_error(sctx, X509_V_ERR_UNSPECIFIED);
    return 0;
  }
}

}  // namespace

void SetVerifyHook(SSL_CTX* ctx, int mode) {
  SSL_CTX_set_verify(ctx, mode, nullptr);
  SSL_CTX_set_cert_verify_callback(ctx, CertVerifyCallback, nullptr);
}

void SetVerifyHook(SSL* ssl, int mode) {
  // OpenSSL has the callback per SSL_CTX only. Connections of the same
  // SSL_CTX without an ambient verifier fall back to X509_verify_cert, which
  // is what they would have run anyway.
  SSL_set_verify(ssl, mode, nullptr);
  SSL_CTX_set_cert_verify_callback(SSL_get_SSL_CTX(ssl), CertVerifyCallback, nullptr);
}

}  // namespace ambient::identity::internal
