// ambient/identity/spiffe_id.h: SPIFFE IDs, trust domains and the Istio view.
//
// Object model. A SpiffeId is a validated `spiffe://<trust-domain>[/<path>]`
// URI held as one string; a TrustDomain is a validated trust-domain name. Both
// are values (copyable, comparable, hashable) and can only be made through
// their parsers, so holding one means the text followed the SPIFFE-ID
// specification. ParseSpiffeIdView() validates without allocating and returns
// views into the caller's buffer: it is the hot-path form.
//
// Accepted set (go-spiffe's `spiffeid.FromString`, plus the specification's
// length limits): exact lowercase `spiffe://` prefix; trust domain non-empty,
// only `a-z 0-9 . - _`, at most 255 bytes; path optional, made of `/segment`
// parts of `a-z A-Z 0-9 . - _`, no empty, `.` or `..` segment, no trailing
// slash; whole ID at most 2048 bytes. Ports, userinfo, queries, fragments and
// percent-encoding are all rejected as bad characters.
//
// IstioIdentity is the (trust domain, namespace, service account) view Istio
// and ztunnel use, `spiffe://TD/ns/NS/sa/SA`, with ztunnel's own parser.
//
// Threads: all types here are immutable values; any thread.
#ifndef AMBIENT_IDENTITY_SPIFFE_ID_H_
#define AMBIENT_IDENTITY_SPIFFE_ID_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ambient::identity {

// SpiffeIdError is the detail code (ambient::DetailOf) attached to every
// failure of the SPIFFE ID and trust-domain parsers. The values are those of
// ambient_spiffe_id_error in ambient/c/identity.h.
enum class SpiffeIdError : int {
  kNone = 0,
  kEmpty = 1,                // "cannot be empty"
  kBadScheme = 2,            // not starting with exactly "spiffe://"
  kMissingTrustDomain = 3,   // nothing between "spiffe://" and the path
  kBadTrustDomainChar = 4,   // a byte outside a-z 0-9 . - _ in the trust domain
  kBadPathChar = 5,          // a byte outside a-z A-Z 0-9 . - _ in a path segment
  kEmptySegment = 6,         // "//" inside the path
  kDotSegment = 7,           // a "." or ".." segment
  kTrailingSlash = 8,        // the path ends with "/"
  kTooLong = 9,              // the whole ID is longer than 2048 bytes
  kTrustDomainTooLong = 10,  // the trust domain is longer than 255 bytes
};

inline constexpr size_t kMaxSpiffeIdLength = 2048;
inline constexpr size_t kMaxTrustDomainLength = 255;

// SpiffeIdView is a validated SPIFFE ID as views into the caller's text:
// `trust_domain` ("example.org") and `path` ("" or "/ns/a/sa/b").
struct SpiffeIdView {
  absl::string_view trust_domain;
  absl::string_view path;
};

// ParseSpiffeIdView validates `id` and returns views into it; it allocates
// only to build an error. Errors: InvalidArgument with a SpiffeIdError detail
// and a message saying what is wrong and at which byte offset.
absl::StatusOr<SpiffeIdView> ParseSpiffeIdView(absl::string_view id);

// ValidateSpiffeId is the check alone: kNone for a valid ID, else the first
// rule broken. It never allocates, even on failure.
SpiffeIdError ValidateSpiffeId(absl::string_view id);

// ValidateSpiffeIdList checks that every entry of `ids` is a full SPIFFE ID
// (the rules above). It is how every allow list of identities (HBONE server
// `allow`, node config) refuses a bad entry up front, instead of accepting it
// and denying every client later. `what` names the list in the message, e.g.
// "allow". Errors: InvalidArgument naming the entry (`allow[1]`), what is
// wrong, and, for Istio's scheme-less form "td/ns/NS/sa/SA" (which authz
// policy principals use, not allow lists), the SPIFFE ID that was meant.
// The SpiffeIdError detail of the first bad entry is attached.
absl::Status ValidateSpiffeIdList(const std::vector<std::string>& ids, absl::string_view what);

class TrustDomain {
 public:
  // Parse accepts a bare trust-domain name ("example.org") or, like go-spiffe,
  // any text containing ":/" parsed as a full SPIFFE ID whose trust domain is
  // taken. Errors: InvalidArgument with a SpiffeIdError detail.
  static absl::StatusOr<TrustDomain> Parse(absl::string_view name);

  // name returns the trust domain's name, e.g. "example.org".
  const std::string& name() const { return name_; }
  // IdString returns the trust domain's own SPIFFE ID, "spiffe://<name>".
  std::string IdString() const;

  friend bool operator==(const TrustDomain& a, const TrustDomain& b) { return a.name_ == b.name_; }
  friend bool operator!=(const TrustDomain& a, const TrustDomain& b) { return !(a == b); }
  friend bool operator<(const TrustDomain& a, const TrustDomain& b) { return a.name_ < b.name_; }
  template <typename H>
  friend H AbslHashValue(H h, const TrustDomain& td) {
    return H::combine(std::move(h), td.name_);
  }

 private:
  friend class SpiffeId;
  explicit TrustDomain(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

class SpiffeId {
 public:
  // Parse validates `id` (rules at the top of this file) and keeps a copy.
  // Errors: InvalidArgument with a SpiffeIdError detail.
  static absl::StatusOr<SpiffeId> Parse(absl::string_view id);
  // FromParts joins a trust domain and a path ("" or "/seg/...") and validates
  // the result like Parse.
  static absl::StatusOr<SpiffeId> FromParts(const TrustDomain& td, absl::string_view path);

  // str returns the whole ID, "spiffe://example.org/path".
  const std::string& str() const { return id_; }
  // trust_domain_name returns a view of the trust domain inside str().
  absl::string_view trust_domain_name() const {
    return absl::string_view(id_).substr(kSchemeLength, td_length_);
  }
  // trust_domain returns the trust domain as a value (allocates a copy).
  TrustDomain trust_domain() const;
  // path returns the path inside str(): "" for a trust domain's own ID, else
  // starting with "/".
  absl::string_view path() const {
    return absl::string_view(id_).substr(kSchemeLength + td_length_);
  }
  // MemberOf reports whether this ID is in trust domain `td`.
  bool MemberOf(const TrustDomain& td) const { return trust_domain_name() == td.name(); }

  friend bool operator==(const SpiffeId& a, const SpiffeId& b) { return a.id_ == b.id_; }
  friend bool operator!=(const SpiffeId& a, const SpiffeId& b) { return !(a == b); }
  friend bool operator<(const SpiffeId& a, const SpiffeId& b) { return a.id_ < b.id_; }
  template <typename H>
  friend H AbslHashValue(H h, const SpiffeId& id) {
    return H::combine(std::move(h), id.id_);
  }

  static constexpr size_t kSchemeLength = 9;  // "spiffe://"

 private:
  SpiffeId(std::string id, uint32_t td_length) : id_(std::move(id)), td_length_(td_length) {}
  std::string id_;
  uint32_t td_length_ = 0;
};

// ParseSpiffeIdList is ValidateSpiffeIdList (same errors, same texts) that
// returns the parsed IDs, in order: how a list of identities given as text
// (flags, files, the C ABI) becomes the SpiffeId values the APIs take.
absl::StatusOr<std::vector<SpiffeId>> ParseSpiffeIdList(const std::vector<std::string>& ids,
                                                        absl::string_view what);

// IstioIdentity is Istio's view of a workload identity,
// spiffe://<trust_domain>/ns/<namespace>/sa/<service_account>.
class IstioIdentity {
 public:
  IstioIdentity(std::string trust_domain, std::string ns, std::string service_account)
      : trust_domain_(std::move(trust_domain)),
        namespace_(std::move(ns)),
        service_account_(std::move(service_account)) {}

  // Parse reads `uri` the way ztunnel does (src/identity/manager.rs): exact
  // "spiffe://" prefix, then exactly five "/"-separated parts with the literal
  // "ns" second and "sa" fourth. Like ztunnel it does not check characters and
  // accepts empty parts. Errors: InvalidArgument naming what is missing.
  static absl::StatusOr<IstioIdentity> Parse(absl::string_view uri);
  // FromSpiffeId is the strict view: a valid SPIFFE ID whose path is exactly
  // /ns/<ns>/sa/<sa>. Errors: InvalidArgument.
  static absl::StatusOr<IstioIdentity> FromSpiffeId(const SpiffeId& id);

  const std::string& trust_domain() const { return trust_domain_; }
  const std::string& ns() const { return namespace_; }
  const std::string& service_account() const { return service_account_; }
  // ToString formats spiffe://TD/ns/NS/sa/SA.
  std::string ToString() const;

  friend bool operator==(const IstioIdentity& a, const IstioIdentity& b) {
    return a.trust_domain_ == b.trust_domain_ && a.namespace_ == b.namespace_ &&
           a.service_account_ == b.service_account_;
  }
  friend bool operator!=(const IstioIdentity& a, const IstioIdentity& b) { return !(a == b); }

 private:
  std::string trust_domain_;
  std::string namespace_;
  std::string service_account_;
};

// The trust domain ztunnel and Istio use when none is configured.
inline constexpr absl::string_view kDefaultTrustDomain = "cluster.local";

}  // namespace ambient::identity

#endif  // AMBIENT_IDENTITY_SPIFFE_ID_H_
