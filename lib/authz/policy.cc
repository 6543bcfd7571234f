#include "ambient/authz/policy.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ambient::authz {
namespace {

// Passes when (positive is empty or any matches) and (negative is empty or none matches).
template <typename T, typename Pred>
bool PassesField(const std::vector<T>& positive, const std::vector<T>& negative, Pred pred) {
  if (!positive.empty() && std::none_of(positive.begin(), positive.end(), pred)) return false;
  if (!negative.empty() && std::any_of(negative.begin(), negative.end(), pred)) return false;
  return true;
}

// The strings one connection offers to the match kinds, computed once per check.
struct Inputs {
  const Connection& conn;
  absl::string_view principal;  // "td/ns/x/sa/y"; empty without identity
  bool has_identity;
};

bool MatchesPrincipal(const StringMatch& m, const Inputs& in) {
  // No identity: ztunnel compares against "", which lacks the spiffe:// prefix
  // and so never matches, for a positive or a negative list alike.
  return in.has_identity && m.Matches(in.principal);
}

bool MatchesOne(const Match& m, const Inputs& in) {
  const Connection& c = in.conn;
  const absl::string_view ns = in.has_identity ? absl::string_view(c.src_identity->ns()) : "";
  return PassesField(m.destination_ips, m.not_destination_ips,
                     [&](const IpPrefix& p) { return p.Contains(c.dst_ip); }) &&
         PassesField(m.source_ips, m.not_source_ips,
                     [&](const IpPrefix& p) { return p.Contains(c.src_ip); }) &&
         PassesField(m.destination_ports, m.not_destination_ports,
                     [&](uint16_t p) { return p == c.dst_port; }) &&
         PassesField(m.service_accounts, m.not_service_accounts,
                     [&](const ServiceAccountMatch& sa) {
                       return in.has_identity && c.src_identity->ns() == sa.ns &&
                              c.src_identity->service_account() == sa.service_account;
                     }) &&
         PassesField(m.principals, m.not_principals,
                     [&](const StringMatch& p) { return MatchesPrincipal(p, in); }) &&
         PassesField(m.namespaces, m.not_namespaces,
                     [&](const StringMatch& p) { return p.Matches(ns); });
}

bool ClauseMatches(const Clause& clause, const Inputs& in) {
  if (clause.matches.empty()) return true;
  for (const Match& m : clause.matches) {
    if (m.empty()) continue;
    if (MatchesOne(m, in)) return true;
  }
  return false;
}

}  // namespace

bool StringMatch::Matches(absl::string_view s) const {
  switch (kind_) {
    case Kind::kExact: return s == value_;
    case Kind::kPrefix: return absl::StartsWith(s, value_);
    case Kind::kSuffix: return absl::EndsWith(s, value_);
    case Kind::kPresence: return !s.empty();
  }
  return false;
}

bool Match::empty() const {
  return namespaces.empty() && not_namespaces.empty() && principals.empty() &&
         not_principals.empty() && source_ips.empty() && not_source_ips.empty() &&
         destination_ips.empty() && not_destination_ips.empty() && destination_ports.empty() &&
         not_destination_ports.empty() && service_accounts.empty() && not_service_accounts.empty();
}

std::string Policy::key() const { return absl::StrCat(ns, "/", name); }

std::string PrincipalOf(const Connection& conn) {
  if (!conn.src_identity.has_value()) return "";
  const identity::IstioIdentity& id = *conn.src_identity;
  return absl::StrCat(id.trust_domain(), "/ns/", id.ns(), "/sa/", id.service_account());
}

bool Policy::Matches(const Connection& conn) const {
  if (rules.empty()) return false;
  return Matches(conn, PrincipalOf(conn));
}

bool Policy::Matches(const Connection& conn, absl::string_view principal) const {
  if (rules.empty()) return false;
  const Inputs in{conn, principal, conn.src_identity.has_value()};
  for (const Rule& rule : rules) {
    bool all = true;
    for (const Clause& clause : rule.clauses) {
      if (!ClauseMatches(clause, in)) {
        all = false;
        break;
      }
    }
    if (all) return true;
  }
  return false;
}

}  // namespace ambient::authz
