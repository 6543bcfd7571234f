// The identity layer on BoringSSL: chains as CRYPTO_BUFFERs for
// SSL_set_chain_and_key, and peer verification through custom verify.
#include <openssl/ec_key.h>
#include <openssl/pool.h>

#include "absl/container/inlined_vector.h"
#include "ambient/base/status.h"
#include "identity/tls_backend.h"

#if !defined(OPENSSL_IS_BORINGSSL)
#error "tls_boringssl.cc must be compiled against BoringSSL's headers"
#endif

namespace ambient::identity::internal {

struct NativeChain {
  std::vector<tls::UniquePtr<CRYPTO_BUFFER>> owned;
  std::vector<CRYPTO_BUFFER*> view;
};

absl::StatusOr<std::shared_ptr<const NativeChain>> MakeNativeChain(
    const std::vector<PemCertificate>& chain) {
  auto out = std::make_shared<NativeChain>();
  for (const PemCertificate& c : chain) {
    tls::UniquePtr<CRYPTO_BUFFER> buf(
        CRYPTO_BUFFER_new(reinterpret_cast<const uint8_t*>(c.der.data()), c.der.size(), nullptr));
    if (buf == nullptr) return absl::ResourceExhaustedError("out of memory");
    out->view.push_back(buf.get());
    out->owned.push_back(std::move(buf));
  }
  return out;
}

bool UseChainAndKey(SSL* ssl, const Credentials& creds) {
  const NativeChain& chain = creds.native_chain();
  return SSL_set_chain_and_key(ssl, chain.view.data(), chain.view.size(), creds.private_key(),
                               nullptr) == 1;
}

bool IsP256(EVP_PKEY* key) {
  const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(key);
  return ec != nullptr && EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) == NID_X9_62_prime256v1;
}

namespace {

ssl_verify_result_t VerifyCallback(SSL* ssl, uint8_t* out_alert) {
  try {
    absl::Status st = VerifyPeer(ssl, [ssl](const SvidVerifier& verifier) {
      const STACK_OF(CRYPTO_BUFFER)* certs = SSL_get0_peer_certificates(ssl);
      absl::InlinedVector<absl::string_view, 4> chain;
      for (size_t i = 0; certs != nullptr && i < sk_CRYPTO_BUFFER_num(certs); ++i) {
        const CRYPTO_BUFFER* b = sk_CRYPTO_BUFFER_value(certs, i);
        chain.emplace_back(reinterpret_cast<const char*>(CRYPTO_BUFFER_data(b)),
                           CRYPTO_BUFFER_len(b));
      }
      return verifier.VerifyDer(chain);
    });
    if (st.ok()) return ssl_verify_ok;
    *out_alert = DetailOf(st) != 0 ? AlertFor(st) : SSL_AD_INTERNAL_ERROR;
    return ssl_verify_invalid;
  } catch (...) {
    *out_alert = SSL_AD_INTERNAL_ERROR;
    return ssl_verify_invalid;
  }
}

}  // namespace

void SetVerifyHook(SSL_CTX* ctx, int mode) { SSL_CTX_set_custom_verify(ctx, mode, VerifyCallback); }
void SetVerifyHook(SSL* ssl, int mode) { SSL_set_custom_verify(ssl, mode, VerifyCallback); }

}  // namespace ambient::identity::internal
