// ambient/identity/svid_verifier.h: X509-SVID verification.
//
// Object model. An SvidVerifier checks a presented certificate chain (leaf
// first, then intermediates) against a TrustBundleSource, a VerifyPolicy and a
// clock, and answers with the peer's SPIFFE ID. It is immutable and shared
// (std::shared_ptr); the bundles it reads can be swapped under it.
//
// What Verify checks, in this order, each with its own SvidError detail:
//   1. a chain is present and the leaf parses;
//   2. the leaf has exactly one URI SAN and it is a valid SPIFFE ID with a
//      non-root path (X509-SVID §2, §5.2);
//   3. the leaf is not a CA; keyUsage is present, has digitalSignature and
//      neither keyCertSign nor cRLSign (§4.1, §4.3);
//   4. the trust domain is allowed by the policy and has a bundle;
//   5. RFC 5280 path validation against the bundle of the leaf's own trust
//      domain, the rest of the chain as untrusted intermediates, at the
//      clock's time (expired / not yet valid / untrusted / bad signature);
//   6. the ID is one of the expected identities, when the policy lists some.
//
// Threads: Verify may be called from any number of threads at once.
#ifndef AMBIENT_IDENTITY_SVID_VERIFIER_H_
#define AMBIENT_IDENTITY_SVID_VERIFIER_H_

#include <openssl/x509.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "ambient/identity/spiffe_id.h"
#include "ambient/identity/trust_bundle.h"

namespace ambient::identity {

// SvidError is the detail code (ambient::DetailOf) of every verification
// failure; the values are those of ambient_svid_error in ambient/c/identity.h.
enum class SvidError : int {
  kNone = 0,
  kEmptyChain = 1,              // no certificate was presented
  kMalformedCertificate = 2,    // a certificate does not parse / bad extensions
  kNoUriSan = 3,                // the leaf has no URI SAN
  kMultipleUriSans = 4,         // the leaf has more than one URI SAN
  kInvalidSpiffeId = 5,         // the URI SAN is not a valid SPIFFE ID
  kLeafIdWithoutPath = 6,       // the leaf's SPIFFE ID has no path
  kLeafIsCa = 7,                // basicConstraints cA=true on the leaf
  kNoKeyUsage = 8,              // the leaf has no keyUsage extension
  kLeafKeyCertSign = 9,         // keyCertSign set on the leaf
  kLeafCrlSign = 10,            // cRLSign set on the leaf
  kNoDigitalSignature = 11,     // digitalSignature missing on the leaf
  kTrustDomainNotAllowed = 12,  // the policy does not accept the trust domain
  kNoBundle = 13,               // no bundle for the leaf's trust domain
  kExpired = 14,                // a certificate of the chain has expired
  kNotYetValid = 15,            // a certificate of the chain is not yet valid
  kUntrusted = 16,              // no path to an authority of the trust domain
  kBadSignature = 17,           // a signature in the chain does not verify
  kChainInvalid = 18,           // any other path-validation failure
  kUnexpectedIdentity = 19,     // valid SVID, but not an expected identity
};

// UnixClock returns the current time in seconds since the Unix epoch.
using UnixClock = std::function<int64_t()>;

// SystemUnixClock reads the system's real-time clock.
int64_t SystemUnixClock();

// VerifyPolicy restricts which valid SVIDs are accepted.
struct VerifyPolicy {
  // When non-empty, the peer's ID must equal one of these.
  std::vector<SpiffeId> expected_ids;
  // When non-empty, the peer's trust domain must be one of these.
  std::vector<TrustDomain> allowed_trust_domains;

  // ExpectIdentities is ztunnel's client-side (outbound) policy: the server
  // must be one of `ids`.
  static VerifyPolicy ExpectIdentities(std::vector<SpiffeId> ids);
  // SameTrustDomain is ztunnel's server-side (inbound) policy: the client
  // must be in our own trust domain `ours`.
  static VerifyPolicy SameTrustDomain(TrustDomain ours);
  // AnyTrustDomain accepts any valid SVID of a trust domain with a bundle.
  static VerifyPolicy AnyTrustDomain() { return VerifyPolicy{}; }
};

class SvidVerifier {
 public:
  // Create makes a verifier reading `bundles` on every call, applying
  // `policy`, with `clock` (empty: SystemUnixClock). Errors: InvalidArgument
  // for a null source; FailedPrecondition when the TLS library bound to the
  // process is not the one ambient was built with.
  static absl::StatusOr<std::shared_ptr<const SvidVerifier>> Create(
      std::shared_ptr<TrustBundleSource> bundles, VerifyPolicy policy, UnixClock clock = {});

  // Verify checks `chain` (leaf first; certificates are not modified except
  // for the TLS library's internal caches) and returns the leaf's SPIFFE ID.
  // Errors: Unauthenticated (chain problems) or PermissionDenied (trust domain
  // not allowed, unexpected identity), always with an SvidError detail and a
  // message naming the rule and, for path validation, the depth.
  absl::StatusOr<SpiffeId> Verify(absl::Span<X509* const> chain) const;
  // VerifyDer is Verify for DER certificates (leaf first), as a TLS library
  // hands over a peer's chain. A certificate that does not parse fails with
  // kMalformedCertificate naming its depth.
  absl::StatusOr<SpiffeId> VerifyDer(absl::Span<const absl::string_view> chain) const;
  // VerifyPem is Verify for a PEM chain (leaf first). A PEM that holds no
  // certificate fails with kEmptyChain; unparsable PEM with
  // kMalformedCertificate.
  absl::StatusOr<SpiffeId> VerifyPem(absl::string_view pem) const;

  const VerifyPolicy& policy() const { return policy_; }
  const std::shared_ptr<TrustBundleSource>& bundles() const { return bundles_; }
  // Now returns the verifier's clock reading.
  int64_t Now() const { return clock_ ? clock_() : SystemUnixClock(); }

  // Use Create.
  SvidVerifier(std::shared_ptr<TrustBundleSource> bundles, VerifyPolicy policy, UnixClock clock)
      : bundles_(std::move(bundles)), policy_(std::move(policy)), clock_(std::move(clock)) {}

 private:
  std::shared_ptr<TrustBundleSource> bundles_;
  VerifyPolicy policy_;
  UnixClock clock_;
};

// VerifyX509Svid is the verification itself, for callers that manage their
// own snapshot and time: `chain` against `bundles` under `policy` at `now`.
absl::StatusOr<SpiffeId> VerifyX509Svid(absl::Span<X509* const> chain,
                                        const TrustBundleSet& bundles,
                                        const VerifyPolicy& policy, int64_t now);

// LeafSpiffeId returns the SPIFFE ID of `cert`'s single URI SAN, checking
// only the SAN rules (step 2 above, without the non-root-path rule).
absl::StatusOr<SpiffeId> LeafSpiffeId(X509* cert);

}  // namespace ambient::identity

#endif  // AMBIENT_IDENTITY_SVID_VERIFIER_H_
