// ambient/identity/trust_bundle.h: X.509 trust bundles, per trust domain.
//
// Object model. A TrustBundle is the immutable set of X.509 authorities (CA
// certificates) of one trust domain, with the SPIFFE bundle's sequence number
// and refresh hint when it came from bundle JSON. A TrustBundleSet is an
// immutable snapshot mapping trust domains to their bundles (several trust
// domains = federation). A TrustBundleSource holds the current snapshot and
// swaps it atomically: verifiers read the source on every verification, so an
// update is seen by the next handshake and never half-applied. All three are
// shared through std::shared_ptr.
//
// Isolation: a certificate is only ever validated against the bundle of the
// trust domain in its own SPIFFE ID; an authority of domain A never vouches
// for an ID in domain B. Every authority of a bundle is a trust anchor (as in
// go-spiffe), whether or not it is self-signed.
//
// Threads: TrustBundle and TrustBundleSet are immutable, any thread. A
// TrustBundleSource may be read and updated from any threads at once.
#ifndef AMBIENT_IDENTITY_TRUST_BUNDLE_H_
#define AMBIENT_IDENTITY_TRUST_BUNDLE_H_

#include <openssl/x509.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/base/tls.h"
#include "ambient/identity/spiffe_id.h"

namespace ambient::identity {

class TrustBundle {
 public:
  // FromPem reads every CERTIFICATE block of `pem` as an authority of `td`.
  // Errors: InvalidArgument when there is no certificate, a block is not a
  // certificate or does not parse; FailedPrecondition when the process's TLS
  // library is not the one ambient was built with.
  static absl::StatusOr<std::shared_ptr<const TrustBundle>> FromPem(const TrustDomain& td,
                                                                  absl::string_view pem);

  // FromSpiffeJson reads a SPIFFE trust bundle (a JWK Set) for `td`: every key
  // with "use": "x509-svid" contributes the first certificate of its "x5c"
  // (standard base64 DER); keys with another or no "use", and x509-svid keys
  // without x5c, are ignored as the SPIFFE Trust Domain and Bundle spec says.
  // "keys" must be present; an empty list is a valid bundle with no
  // authorities (everything from `td` is then rejected). spiffe_sequence and
  // spiffe_refresh_hint are kept when they are whole numbers in range
  // (uint64 and int64; null counts as absent). The JSON is read strictly
  // (RFC 8259: UTF-8, no comments or trailing commas); a member name that
  // appears twice in one object, and documents nested deeper than 32 levels,
  // are refused. Errors: InvalidArgument (bad JSON, a duplicated member, too
  // deep, "keys" missing or not a list, a key that is not an object, bad
  // base64 or DER).
  static absl::StatusOr<std::shared_ptr<const TrustBundle>> FromSpiffeJson(const TrustDomain& td,
                                                                         absl::string_view json);

  // FromAuthorities makes a bundle from certificates already parsed (each is
  // up-ref'd). Errors: InvalidArgument for a NULL certificate.
  static absl::StatusOr<std::shared_ptr<const TrustBundle>> FromAuthorities(
      const TrustDomain& td, const std::vector<X509*>& authorities,
      std::optional<uint64_t> sequence = std::nullopt,
      std::optional<int64_t> refresh_hint_seconds = std::nullopt);

  const TrustDomain& trust_domain() const { return trust_domain_; }
  // authorities lends the CA certificates; they live as long as the bundle.
  const std::vector<tls::UniquePtr<X509>>& authorities() const { return authorities_; }
  // store lends an X509_STORE holding the authorities (with
  // X509_V_FLAG_PARTIAL_CHAIN); do not modify it.
  X509_STORE* store() const { return store_.get(); }
  std::optional<uint64_t> sequence() const { return sequence_; }
  std::optional<int64_t> refresh_hint_seconds() const { return refresh_hint_; }

  // Use the factories above.
  TrustBundle(TrustDomain td, std::vector<tls::UniquePtr<X509>> authorities,
              tls::UniquePtr<X509_STORE> store, std::optional<uint64_t> sequence,
              std::optional<int64_t> refresh_hint);

 private:
  TrustDomain trust_domain_;
  std::vector<tls::UniquePtr<X509>> authorities_;
  tls::UniquePtr<X509_STORE> store_;
  std::optional<uint64_t> sequence_;
  std::optional<int64_t> refresh_hint_;
};

class TrustBundleSet {
 public:
  // Create makes a snapshot of `bundles`. Errors: AlreadyExists when two
  // bundles have the same trust domain; InvalidArgument for a null bundle.
  static absl::StatusOr<std::shared_ptr<const TrustBundleSet>> Create(
      std::vector<std::shared_ptr<const TrustBundle>> bundles);

  // FromSpiffeBundleMapJson reads a SPIFFE bundle map,
  // {"trust_domains": {"<td>": <bundle JSON>, ...}}: "trust_domains" must be
  // present (it may be empty); a duplicated trust-domain key is rejected
  // (AlreadyExists; any other duplicated member is InvalidArgument); each
  // name must be a valid trust domain and each bundle is read as
  // FromSpiffeJson does. Errors name the offending trust domain.
  static absl::StatusOr<std::shared_ptr<const TrustBundleSet>> FromSpiffeBundleMapJson(
      absl::string_view json);

  // Empty returns a snapshot without any trust domain.
  static std::shared_ptr<const TrustBundleSet> Empty();

  // With returns a new snapshot equal to this one with `bundle` added or
  // replacing the bundle of its trust domain.
  std::shared_ptr<const TrustBundleSet> With(std::shared_ptr<const TrustBundle> bundle) const;
  // Without returns a new snapshot without trust domain `td`.
  std::shared_ptr<const TrustBundleSet> Without(const TrustDomain& td) const;

  // Find lends the bundle of `trust_domain`, or nullptr. Valid while the set
  // lives.
  const TrustBundle* Find(absl::string_view trust_domain) const;
  size_t size() const { return bundles_.size(); }
  // bundles lends the map from trust-domain name to bundle.
  const std::map<std::string, std::shared_ptr<const TrustBundle>, std::less<>>& bundles() const {
    return bundles_;
  }

  explicit TrustBundleSet(
      std::map<std::string, std::shared_ptr<const TrustBundle>, std::less<>> bundles)
      : bundles_(std::move(bundles)) {}

 private:
  std::map<std::string, std::shared_ptr<const TrustBundle>, std::less<>> bundles_;
};

class TrustBundleSource {
 public:
  // A source starting with `initial` (an empty set when null).
  explicit TrustBundleSource(std::shared_ptr<const TrustBundleSet> initial = nullptr);

  // Get returns the current snapshot (never null).
  std::shared_ptr<const TrustBundleSet> Get() const;
  // Set replaces the snapshot atomically (null means an empty set).
  void Set(std::shared_ptr<const TrustBundleSet> next);
  // Update replaces (or adds) one trust domain's bundle atomically with
  // respect to other Update/Remove calls.
  void Update(std::shared_ptr<const TrustBundle> bundle);
  // Remove drops trust domain `td`; returns whether it was there.
  bool Remove(const TrustDomain& td);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const TrustBundleSet> current_;
};

}  // namespace ambient::identity

#endif  // AMBIENT_IDENTITY_TRUST_BUNDLE_H_
