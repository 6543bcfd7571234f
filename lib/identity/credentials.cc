// Our own X509-SVID chain and key, and the rotation holder.
#include "ambient/identity/credentials.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"
#include "ambient/base/runtime_check.h"
#include "ambient/base/tls.h"
#include "ambient/identity/svid_verifier.h"
#include "identity/pem.h"
#include "identity/tls_backend.h"

namespace ambient::identity {

absl::StatusOr<int64_t> TimeToUnix(const ASN1_TIME* t) {
  if (t == nullptr) return absl::InvalidArgumentError("missing time");
  tls::UniquePtr<ASN1_TIME> epoch(ASN1_TIME_set(nullptr, 0));
  if (epoch == nullptr) return absl::ResourceExhaustedError("out of memory");
  int days = 0;
  int seconds = 0;
  if (!ASN1_TIME_diff(&days, &seconds, epoch.get(), t)) {
    internal::ClearErrors();
    return absl::InvalidArgumentError("malformed certificate time");
  }
  return static_cast<int64_t>(days) * 86400 + seconds;
}

Credentials::Credentials(SpiffeId id, tls::UniquePtr<X509> leaf, std::vector<std::string> chain_der,
                         std::shared_ptr<const internal::NativeChain> native,
                         tls::UniquePtr<EVP_PKEY> key, int64_t not_before, int64_t not_after)
    : id_(std::move(id)),
      leaf_(std::move(leaf)),
      chain_der_(std::move(chain_der)),
      native_(std::move(native)),
      key_(std::move(key)),
      not_before_(not_before),
      not_after_(not_after) {}

absl::StatusOr<std::shared_ptr<const Credentials>> Credentials::FromPem(absl::string_view chain_pem,
                                                                      absl::string_view key_pem) {
  if (absl::Status s = EnsureTlsBackend(); !s.ok()) return s;
  absl::StatusOr<std::vector<internal::PemCertificate>> chain =
      internal::ReadPemCertificates(chain_pem, "credentials chain PEM");
  if (!chain.ok()) return chain.status();
  if (chain->empty()) return absl::InvalidArgumentError("credentials chain PEM: no certificate");
  X509* leaf = (*chain)[0].cert.get();

  if (key_pem.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError("credentials key PEM: too large");
  }
  tls::UniquePtr<BIO> bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  if (bio == nullptr) return absl::ResourceExhaustedError("out of memory");
  tls::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  internal::ClearErrors();
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        "credentials key PEM: no private key found (expected PKCS#8, EC or RSA PEM)");
  }
  switch (EVP_PKEY_id(key.get())) {
    case EVP_PKEY_EC:
      if (!internal::IsP256(key.get())) {
        return absl::InvalidArgumentError(
            "credentials key: only the P-256 curve is supported for ECDSA keys");
      }
      break;
    case EVP_PKEY_RSA:
      if (EVP_PKEY_bits(key.get()) < 2048) {
        return absl::InvalidArgumentError(absl::StrCat(
            "credentials key: RSA key of ", EVP_PKEY_bits(key.get()), " bits, at least 2048 needed"));
      }
      break;
    default:
      return absl::InvalidArgumentError(
          "credentials key: unsupported key type (ECDSA P-256 or RSA only)");
  }
  if (X509_check_private_key(leaf, key.get()) != 1) {
    internal::ClearErrors();
    return absl::InvalidArgumentError(
        "credentials: the private key does not match the leaf certificate's public key");
  }
  absl::StatusOr<SpiffeId> id = LeafSpiffeId(leaf);
  if (!id.ok()) return absl::InvalidArgumentError(absl::StrCat("credentials: ", id.status().message()));
  if (id->path().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "credentials: leaf SPIFFE ID \"", id->str(), "\" has no path (it names a trust domain)"));
  }
  if (X509_get_extension_flags(leaf) & EXFLAG_CA) {
    return absl::InvalidArgumentError("credentials: leaf certificate has the CA flag set");
  }
  absl::StatusOr<int64_t> not_before = TimeToUnix(X509_get0_notBefore(leaf));
  absl::StatusOr<int64_t> not_after = TimeToUnix(X509_get0_notAfter(leaf));
  if (!not_before.ok() || !not_after.ok()) {
    return absl::InvalidArgumentError("credentials: leaf validity period does not parse");
  }
  absl::StatusOr<std::shared_ptr<const internal::NativeChain>> native =
      internal::MakeNativeChain(*chain);
  if (!native.ok()) return native.status();
  std::vector<std::string> der;
  der.reserve(chain->size());
  for (internal::PemCertificate& c : *chain) der.push_back(std::move(c.der));
  tls::UniquePtr<X509> leaf_owner = std::move((*chain)[0].cert);
  return std::make_shared<const Credentials>(*std::move(id), std::move(leaf_owner), std::move(der),
                                             *std::move(native), std::move(key), *not_before,
                                             *not_after);
}

std::shared_ptr<const Credentials> CredentialHolder::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

void CredentialHolder::Set(std::shared_ptr<const Credentials> next) {
  std::lock_guard<std::mutex> lock(mu_);
  current_.swap(next);
}

}  // namespace ambient::identity
