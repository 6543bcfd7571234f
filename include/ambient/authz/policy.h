// ambient/authz/policy.h: L4 authorization policies with ztunnel's semantics.
//
// A Policy is an Istio Authorization as ztunnel sees it: a scope (global,
// namespace, or selected workloads), an action (ALLOW or DENY), a dry-run flag
// and rules. Matching a Connection against a policy:
//   - a policy with no rules never matches; rules are OR'ed;
//   - within a rule, clauses are AND'ed, and an empty clause matches;
//   - within a clause, matches are OR'ed, and a match with no fields at all is
//     skipped (so a clause made only of empty matches does not match);
//   - within a match, every field kind present must pass (AND); for one kind,
//     the positive list passes when any entry matches (or it is empty), and the
//     negative list passes when none does (or it is empty).
// Inputs: principals are compared with the peer identity's "spiffe://"
// stripped (no identity never matches, positive or not), namespaces with the
// identity's namespace ("" without identity), service accounts with the exact
// namespace + service account (trust domain ignored; no identity never
// matches), IPs by prefix containment, ports exactly. The destination port is
// the real target port, never 15008.
//
// Policies are plain values: build them in code, or decode Istio's
// istio.security.Authorization (binary protobuf or its JSON mapping) with
// policy_codec.h. Thread-compatible: a const Policy may be shared.
#ifndef AMBIENT_AUTHZ_POLICY_H_
#define AMBIENT_AUTHZ_POLICY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "ambient/authz/ip.h"
#include "ambient/identity/spiffe_id.h"

namespace ambient::authz {

enum class Scope { kGlobal = 0, kNamespace = 1, kWorkloadSelector = 2 };
enum class Action { kAllow = 0, kDeny = 1 };

// StringMatch is exact, prefix, suffix, or presence (any non-empty value).
class StringMatch {
 public:
  enum class Kind { kExact, kPrefix, kSuffix, kPresence };
  static StringMatch Exact(std::string s) { return StringMatch(Kind::kExact, std::move(s)); }
  static StringMatch Prefix(std::string s) { return StringMatch(Kind::kPrefix, std::move(s)); }
  static StringMatch Suffix(std::string s) { return StringMatch(Kind::kSuffix, std::move(s)); }
  static StringMatch Presence() { return StringMatch(Kind::kPresence, {}); }

  Kind kind() const { return kind_; }
  const std::string& value() const { return value_; }
  bool Matches(absl::string_view s) const;

 private:
  StringMatch(Kind k, std::string v) : kind_(k), value_(std::move(v)) {}
  Kind kind_;
  std::string value_;
};

struct ServiceAccountMatch {
  std::string ns;
  std::string service_account;
};

struct Match {
  std::vector<StringMatch> namespaces, not_namespaces;
  std::vector<StringMatch> principals, not_principals;
  std::vector<IpPrefix> source_ips, not_source_ips;
  std::vector<IpPrefix> destination_ips, not_destination_ips;
  std::vector<uint16_t> destination_ports, not_destination_ports;
  std::vector<ServiceAccountMatch> service_accounts, not_service_accounts;

  // empty reports whether no field is set (such a match is skipped).
  bool empty() const;
};

struct Clause {
  std::vector<Match> matches;
};

struct Rule {
  std::vector<Clause> clauses;
};

// Connection is what a policy is evaluated against.
struct Connection {
  IpAddress src_ip;
  uint16_t src_port = 0;
  IpAddress dst_ip;
  uint16_t dst_port = 0;
  std::optional<identity::IstioIdentity> src_identity;  // none for plaintext (15006)
};

// PrincipalOf returns what principals are compared with: the source identity
// without "spiffe://" ("td/ns/NS/sa/SA"), or "" without identity.
std::string PrincipalOf(const Connection& conn);

struct Policy {
  std::string name;
  std::string ns;
  Scope scope = Scope::kGlobal;
  Action action = Action::kAllow;
  std::vector<Rule> rules;
  bool dry_run = false;

  // key returns "namespace/name", the name workloads refer to policies by.
  std::string key() const;
  // Matches applies the rules above to `conn`.
  bool Matches(const Connection& conn) const;
  // Matches with the principal string of `conn` computed once by the caller
  // (PrincipalOf), for evaluating many policies against one connection.
  bool Matches(const Connection& conn, absl::string_view principal) const;
};

}  // namespace ambient::authz

#endif  // AMBIENT_AUTHZ_POLICY_H_
