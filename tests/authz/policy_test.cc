// Matching semantics of one policy, case by case as ztunnel defines them.
#include "ambient/authz/policy.h"

#include <gtest/gtest.h>

namespace ambient::authz {
namespace {

Connection Conn(const char* src, uint16_t dst_port, std::optional<identity::IstioIdentity> id) {
  Connection c;
  c.src_ip = *IpAddress::Parse(src);
  c.src_port = 40000;
  c.dst_ip = *IpAddress::Parse("198.18.1.2");
  c.dst_port = dst_port;
  c.src_identity = std::move(id);
  return c;
}

identity::IstioIdentity Id(const char* ns, const char* sa) { return {"cluster.local", ns, sa}; }

Policy WithMatch(Match m) {
  Policy p;
  p.name = "p";
  p.ns = "ns1";
  p.rules.push_back(Rule{{Clause{{std::move(m)}}}});
  return p;
}

TEST(Policy, NoRulesNeverMatches) {
  Policy p;
  EXPECT_FALSE(p.Matches(Conn("198.18.0.1", 80, Id("a", "b"))));
}

TEST(Policy, RuleWithEmptyClauseMatchesEverything) {
  Policy p;
  p.rules.push_back(Rule{{Clause{}}});
  EXPECT_TRUE(p.Matches(Conn("198.18.0.1", 80, std::nullopt)));
}

TEST(Policy, ClauseOfOnlyEmptyMatchesDoesNotMatch) {
  Policy p = WithMatch(Match{});
  EXPECT_FALSE(p.Matches(Conn("198.18.0.1", 80, Id("a", "b"))));
}

TEST(Policy, PrincipalsCompareWithoutSpiffePrefix) {
  Match m;
  m.principals.push_back(StringMatch::Exact("cluster.local/ns/a/sa/b"));
  Policy p = WithMatch(m);
  EXPECT_TRUE(p.Matches(Conn("198.18.0.1", 80, Id("a", "b"))));
  EXPECT_FALSE(p.Matches(Conn("198.18.0.1", 80, Id("a", "c"))));
  EXPECT_FALSE(p.Matches(Conn("198.18.0.1", 80, std::nullopt)));

  Match pre;
  pre.principals.push_back(StringMatch::Prefix("cluster.local/ns/a/"));
  EXPECT_TRUE(WithMatch(pre).Matches(Conn("198.18.0.1", 80, Id("a", "zzz"))));
  Match spiffe;  // a policy spelled with the scheme never matches: it is stripped first
  spiffe.principals.push_back(StringMatch::Exact("spiffe://cluster.local/ns/a/sa/b"));
  EXPECT_FALSE(WithMatch(spiffe).Matches(Conn("198.18.0.1", 80, Id("a", "b"))));
}

TEST(Policy, NotPrincipalsWithoutIdentityPasses) {
  // No identity: the principal predicate is false, so a negative list passes.
  Match m;
  m.not_principals.push_back(StringMatch::Presence());
  Policy p = WithMatch(m);
  EXPECT_TRUE(p.Matches(Conn("198.18.0.1", 80, std::nullopt)));
  EXPECT_FALSE(p.Matches(Conn("198.18.0.1", 80, Id("a", "b"))));
}

TEST(Policy, NamespacesUseIdentityNamespaceOrEmpty) {
  Match m;
  m.namespaces.push_back(StringMatch::Exact("a"));
  EXPECT_TRUE(WithMatch(m).Matches(Conn("198.18.0.1", 80, Id("a", "x"))));
  EXPECT_FALSE(WithMatch(m).Matches(Conn("198.18.0.1", 80, Id("b", "x"))));
  Match presence;
  presence.namespaces.push_back(StringMatch::Presence());
  EXPECT_FALSE(WithMatch(presence).Matches(Conn("198.18.0.1", 80, std::nullopt)));
  Match suffix;
  suffix.not_namespaces.push_back(StringMatch::Suffix("-system"));
  EXPECT_FALSE(WithMatch(suffix).Matches(Conn("198.18.0.1", 80, Id("istio-system", "x"))));
  EXPECT_TRUE(WithMatch(suffix).Matches(Conn("198.18.0.1", 80, Id("default", "x"))));
}

TEST(Policy, ServiceAccountsIgnoreTrustDomainAndNeedIdentity) {
  Match m;
  m.service_accounts.push_back({"a", "b"});
  Connection other_td = Conn("198.18.0.1", 80, identity::IstioIdentity("other.td", "a", "b"));
  EXPECT_TRUE(WithMatch(m).Matches(other_td));
  EXPECT_FALSE(WithMatch(m).Matches(Conn("198.18.0.1", 80, Id("a", "c"))));
  EXPECT_FALSE(WithMatch(m).Matches(Conn("198.18.0.1", 80, std::nullopt)));
}

TEST(Policy, FieldKindsAreAndedEntriesAreOred) {
  Match m;
  m.source_ips.push_back(*IpPrefix::Parse("198.18.0.0/24"));
  m.source_ips.push_back(*IpPrefix::Parse("198.18.5.0/24"));
  m.destination_ports = {80, 8080};
  m.not_destination_ips.push_back(*IpPrefix::Parse("198.19.0.0/16"));
  Policy p = WithMatch(m);
  EXPECT_TRUE(p.Matches(Conn("198.18.0.9", 80, std::nullopt)));
  EXPECT_TRUE(p.Matches(Conn("198.18.5.9", 8080, std::nullopt)));
  EXPECT_FALSE(p.Matches(Conn("198.18.9.9", 80, std::nullopt)));  // source not listed
  EXPECT_FALSE(p.Matches(Conn("198.18.0.9", 81, std::nullopt)));  // port not listed
  Connection excluded = Conn("198.18.0.9", 80, std::nullopt);
  excluded.dst_ip = *IpAddress::Parse("198.19.1.1");
  EXPECT_FALSE(p.Matches(excluded));
}

TEST(Policy, MatchesInAClauseAreOredClausesAreAnded) {
  Match from_a, from_b, port80;
  from_a.namespaces.push_back(StringMatch::Exact("a"));
  from_b.namespaces.push_back(StringMatch::Exact("b"));
  port80.destination_ports = {80};
  Policy p;
  p.rules.push_back(Rule{{Clause{{from_a, from_b}}, Clause{{port80}}}});
  EXPECT_TRUE(p.Matches(Conn("198.18.0.1", 80, Id("a", "x"))));
  EXPECT_TRUE(p.Matches(Conn("198.18.0.1", 80, Id("b", "x"))));
  EXPECT_FALSE(p.Matches(Conn("198.18.0.1", 80, Id("c", "x"))));
  EXPECT_FALSE(p.Matches(Conn("198.18.0.1", 443, Id("a", "x"))));
  // A second rule ORs in.
  Match port443;
  port443.destination_ports = {443};
  p.rules.push_back(Rule{{Clause{{port443}}}});
  EXPECT_TRUE(p.Matches(Conn("198.18.0.1", 443, Id("c", "x"))));
}

}  // namespace
}  // namespace ambient::authz
