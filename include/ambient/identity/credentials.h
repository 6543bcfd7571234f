// ambient/identity/credentials.h: our own X509-SVID and key, with rotation.
//
// Object model. Credentials is an immutable certificate chain (leaf first) and
// the matching private key (ECDSA P-256 or RSA of at least 2048 bits), with
// the leaf's SPIFFE ID and validity. A CredentialHolder holds the current
// Credentials and swaps them atomically: TLS contexts that use the holder
// (InstallCredentials in ambient/identity/tls.h) pick the pair once per
// handshake, so a rotation takes effect for new handshakes while established
// connections keep the pair they started with.
//
// Threads: Credentials is immutable, any thread. CredentialHolder may be read
// and rotated from any threads at once.
#ifndef AMBIENT_IDENTITY_CREDENTIALS_H_
#define AMBIENT_IDENTITY_CREDENTIALS_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/base/tls.h"
#include "ambient/identity/spiffe_id.h"

namespace ambient::identity {

namespace internal {
// The chain in the form the TLS library's handshake takes it (lib/identity).
struct NativeChain;
}  // namespace internal

class Credentials {
 public:
  // FromPem reads a certificate chain (leaf first, then intermediates; any
  // root at the end is kept and sent too) and a private key (PKCS#8, SEC1 or
  // PKCS#1 PEM). Errors (InvalidArgument): no certificate, unparsable PEM,
  // no/unsupported key (only P-256 ECDSA and RSA >= 2048 bits), key not
  // matching the leaf, leaf without exactly one URI SAN holding a valid
  // SPIFFE ID; FailedPrecondition when the TLS library bound to the process
  // is not the one ambient was built with.
  static absl::StatusOr<std::shared_ptr<const Credentials>> FromPem(absl::string_view chain_pem,
                                                                  absl::string_view key_pem);

  // id returns the SPIFFE ID of the leaf.
  const SpiffeId& id() const { return id_; }
  // leaf lends the parsed leaf certificate.
  X509* leaf() const { return leaf_.get(); }
  // chain_der lends the DER certificates of the chain, leaf first.
  const std::vector<std::string>& chain_der() const { return chain_der_; }
  // native_chain lends the chain as the TLS library's handshake takes it
  // (internal to ambient).
  const internal::NativeChain& native_chain() const { return *native_; }
  // private_key lends the key.
  EVP_PKEY* private_key() const { return key_.get(); }
  // Validity of the leaf in Unix seconds, and when to refresh: half-way
  // through the validity period (ztunnel's refresh_at).
  int64_t not_before() const { return not_before_; }
  int64_t not_after() const { return not_after_; }
  int64_t refresh_at() const { return not_before_ + (not_after_ - not_before_) / 2; }

  // Use FromPem.
  Credentials(SpiffeId id, tls::UniquePtr<X509> leaf, std::vector<std::string> chain_der,
              std::shared_ptr<const internal::NativeChain> native, tls::UniquePtr<EVP_PKEY> key,
              int64_t not_before, int64_t not_after);

 private:
  SpiffeId id_;
  tls::UniquePtr<X509> leaf_;
  std::vector<std::string> chain_der_;
  std::shared_ptr<const internal::NativeChain> native_;
  tls::UniquePtr<EVP_PKEY> key_;
  int64_t not_before_;
  int64_t not_after_;
};

class CredentialHolder {
 public:
  // A holder starting with `initial` (may be null: handshakes needing our
  // certificate then fail until Set is called).
  explicit CredentialHolder(std::shared_ptr<const Credentials> initial = nullptr)
      : current_(std::move(initial)) {}

  // Get returns the current credentials (null if none yet).
  std::shared_ptr<const Credentials> Get() const;
  // Set rotates to `next` atomically; handshakes starting afterwards use it.
  void Set(std::shared_ptr<const Credentials> next);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Credentials> current_;
};

// TimeToUnix converts an ASN1_TIME to Unix seconds. Errors: InvalidArgument.
absl::StatusOr<int64_t> TimeToUnix(const ASN1_TIME* t);

}  // namespace ambient::identity

#endif  // AMBIENT_IDENTITY_CREDENTIALS_H_
