// xds::AuthorizationHandler with istio.security.Authorization messages built
// by hand: what lands in the policy store decides connections as the policy
// says (scope, action, dry run, rules, clauses, every match field including
// the not_* ones); bad resources are rejected by name and change nothing.
#include "ambient/xds/authorization_handler.h"

#include <string>
#include <vector>

#include "authorization.pb.h"
#include "gtest/gtest.h"

namespace ambient::xds {
namespace {

namespace sec = ::ambient::wire::istio::security;

ResourceUpdate Update(std::string name, const sec::Authorization& a) {
  return ResourceUpdate{std::move(name), "v1", kAuthorizationType, a.SerializeAsString()};
}
ResourceUpdate Update(std::string name, std::string bytes) {
  return ResourceUpdate{std::move(name), "v1", kAuthorizationType, std::move(bytes)};
}

authz::Connection From(const std::string& src, const std::string& identity, uint16_t port = 80) {
  authz::Connection c;
  c.src_ip = *IpAddress::Parse(src);
  c.dst_ip = *IpAddress::Parse("198.18.0.10");
  c.dst_port = port;
  if (!identity.empty()) c.src_identity = *identity::IstioIdentity::Parse(identity);
  return c;
}

// DenyB denies principal td/ns/ns1/sa/b, except from 198.18.0.0/24 sources.
sec::Authorization DenyB() {
  sec::Authorization a;
  a.set_name("deny-b");
  a.set_namespace_("ns1");
  a.set_scope(sec::NAMESPACE);
  a.set_action(sec::DENY);
  sec::Match* m = a.add_rules()->add_clauses()->add_matches();
  m->add_principals()->set_exact("cluster.local/ns/ns1/sa/b");
  sec::Address* not_src = m->add_not_source_ips();
  not_src->set_address(std::string("\xc6\x12\x00\x00", 4));
  not_src->set_length(24);
  return a;
}

class AuthorizationHandlerTest : public ::testing::Test {
 protected:
  authz::PolicyStore store_;
  AuthorizationHandler handler_{&store_};
  authz::Workload dst_{"ns1", {}};
};

TEST_F(AuthorizationHandlerTest, APolicyFromXdsDecidesConnections) {
  ASSERT_TRUE(handler_.Apply({Update("ns1/deny-b", DenyB())}, {}).empty());
  EXPECT_EQ(store_.size(), 1u);
  authz::Decision d = store_.Check(dst_, From("198.19.0.5", "spiffe://cluster.local/ns/ns1/sa/b"));
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.policy, "ns1/deny-b");
  // not_source_ips: from inside 198.18.0.0/24 the rule does not match.
  EXPECT_TRUE(store_.Check(dst_, From("198.18.0.5", "spiffe://cluster.local/ns/ns1/sa/b")).allowed);
  EXPECT_TRUE(store_.Check(dst_, From("198.19.0.5", "spiffe://cluster.local/ns/ns1/sa/c")).allowed);
  // Another namespace's workloads are outside a NAMESPACE-scoped policy.
  EXPECT_TRUE(
      store_.Check({"ns2", {}}, From("198.19.0.5", "spiffe://cluster.local/ns/ns1/sa/b")).allowed);
}

TEST_F(AuthorizationHandlerTest, AllowRulesWithEveryMatchKindAndDryRun) {
  sec::Authorization a;
  a.set_name("allow-80");
  a.set_namespace_("ns1");
  a.set_scope(sec::WORKLOAD_SELECTOR);
  a.set_action(sec::ALLOW);
  sec::Clause* c = a.add_rules()->add_clauses();
  sec::Match* m = c->add_matches();
  m->add_namespaces()->set_prefix("ns");
  m->add_not_namespaces()->set_exact("ns3");
  m->add_not_principals()->set_suffix("/sa/evil");
  m->add_destination_ports(80);
  m->add_not_destination_ports(81);
  sec::ServiceAccountMatch* sa = m->add_not_service_accounts();
  sa->set_namespace_("ns2");
  sa->set_serviceaccount("blocked");
  sec::Address* dst = m->add_destination_ips();
  dst->set_address(std::string("\xc6\x12\x00\x0a", 4));
  dst->set_length(32);
  sec::Authorization dry = DenyB();
  dry.set_name("deny-dry");
  dry.set_dry_run(true);
  ASSERT_TRUE(handler_.Apply({Update("ns1/allow-80", a), Update("ns1/deny-dry", dry)}, {}).empty());
  authz::Workload selected{"ns1", {"ns1/allow-80"}};
  EXPECT_TRUE(
      store_.Check(selected, From("198.19.0.5", "spiffe://cluster.local/ns/ns2/sa/x")).allowed);
  EXPECT_FALSE(
      store_.Check(selected, From("198.19.0.5", "spiffe://cluster.local/ns/ns2/sa/x", 81)).allowed);
  EXPECT_FALSE(
      store_.Check(selected, From("198.19.0.5", "spiffe://cluster.local/ns/ns3/sa/x")).allowed);
  EXPECT_FALSE(
      store_.Check(selected, From("198.19.0.5", "spiffe://cluster.local/ns/ns2/sa/evil")).allowed);
  EXPECT_FALSE(
      store_.Check(selected, From("198.19.0.5", "spiffe://cluster.local/ns/ns2/sa/blocked"))
          .allowed);
  // The dry-run DENY matches b but does not decide.
  authz::Decision d =
      store_.Check(selected, From("198.19.0.5", "spiffe://cluster.local/ns/ns1/sa/b"));
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.dry_run_hits, std::vector<std::string>{"ns1/deny-dry"});
  // A workload that does not select the policy is not governed by it.
  EXPECT_TRUE(store_.Check(dst_, From("198.19.0.5", "spiffe://cluster.local/ns/ns3/sa/x")).allowed);
}

TEST_F(AuthorizationHandlerTest, BadResourcesAreRejectedAndChangeNothingRemovalsRemove) {
  ASSERT_TRUE(handler_.Apply({Update("ns1/deny-b", DenyB())}, {}).empty());
  sec::Authorization broken = DenyB();  // a bad prefix: the old deny-b must stay
  broken.mutable_rules(0)
      ->mutable_clauses(0)
      ->mutable_matches(0)
      ->mutable_not_source_ips(0)
      ->set_address("abc");
  sec::Authorization global = DenyB();
  global.set_name("g");
  global.set_scope(sec::GLOBAL);
  std::vector<Rejection> r =
      handler_.Apply({Update("ns1/deny-b", broken), Update("ns1/wrong", global),
                      Update("ns1/junk", std::string("\xff\xff", 2)), Update("ns1/g", global)},
                     {});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].first, "ns1/deny-b");
  EXPECT_NE(r[0].second.find("not_source_ips[0]"), std::string::npos) << r[0].second;
  EXPECT_EQ(r[1], Rejection("ns1/wrong",
                            "resource name must be the policy's \"namespace/name\" \"ns1/g\""));
  EXPECT_EQ(r[2].first, "ns1/junk");
  EXPECT_EQ(store_.size(), 2u);
  EXPECT_FALSE(
      store_.Check(dst_, From("198.19.0.5", "spiffe://cluster.local/ns/ns1/sa/b")).allowed);
  EXPECT_TRUE(store_.Check(dst_, From("198.18.0.5", "spiffe://cluster.local/ns/ns1/sa/b")).allowed);

  EXPECT_TRUE(handler_.Apply({}, {"ns1/deny-b", "ns1/unknown"}).empty());
  EXPECT_EQ(store_.size(), 1u);
  EXPECT_TRUE(handler_.Apply({}, {"ns1/g"}).empty());
  EXPECT_TRUE(store_.Check(dst_, From("198.19.0.5", "spiffe://cluster.local/ns/ns1/sa/b")).allowed);
}

}  // namespace
}  // namespace ambient::xds
