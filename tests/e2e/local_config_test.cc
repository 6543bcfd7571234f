// ztunnel's local config format (examples/node/local_config.h): ztunnel's
// own example loads unchanged, the two policy shapes decode to the same
// policy, and bad input is refused naming the place.
#include "local_config.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "ambient/runtime/outbound_decision.h"
#include "gtest/gtest.h"

namespace ambient::examples {
namespace {

const char kLocalhost[] = AMBIENT_SOURCE_DIR "/tests/e2e/testdata/ztunnel/localhost.yaml";

TEST(LocalConfigTest, ZtunnelsLocalhostExampleLoadsUnchanged) {
  absl::StatusOr<LocalConfig> c = LoadLocalConfig(kLocalhost);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->workloads.size(), 2u);
  const runtime::Workload& local = c->workloads[0];
  EXPECT_EQ(local.uid, "cluster1//v1/Pod/default/local");
  EXPECT_EQ(local.name, "local");
  EXPECT_EQ(local.addresses, std::vector<std::string>{"127.0.0.1"});
  EXPECT_TRUE(local.hbone);
  EXPECT_FALSE(c->workloads[1].hbone);  // protocol: TCP
  EXPECT_EQ(local.node, "local");
  EXPECT_EQ(local.Identity()->str(), "spiffe://cluster.local/ns/default/sa/default");
  ASSERT_EQ(local.services.count("default/example.com"), 1u);
  EXPECT_EQ(local.services.at("default/example.com").at(80), 8080);

  ASSERT_EQ(c->services.size(), 2u);
  EXPECT_EQ(c->services[0].hostname, "example.com");
  ASSERT_EQ(c->services[0].vips.size(), 1u);
  EXPECT_EQ(c->services[0].vips[0].Key(), "/127.10.0.1");
  EXPECT_EQ(c->services[1].vips[0].Key(), "remote/127.10.0.2");
  EXPECT_EQ(c->services[0].ports.at(80), 8080);
  EXPECT_EQ(c->services[0].subject_alt_names,
            std::vector<std::string>{"spiffe://cluster.local/ns/default/sa/local"});

  ASSERT_EQ(c->policies.size(), 1u);
  const authz::Policy& p = c->policies[0];
  EXPECT_EQ(p.key(), "default/deny-9999");
  EXPECT_EQ(p.scope, authz::Scope::kNamespace);
  EXPECT_EQ(p.action, authz::Action::kAllow);
  ASSERT_EQ(p.rules.size(), 1u);
  ASSERT_EQ(p.rules[0].clauses.size(), 1u);
  ASSERT_EQ(p.rules[0].clauses[0].matches.size(), 1u);
  EXPECT_EQ(p.rules[0].clauses[0].matches[0].not_destination_ports, std::vector<uint16_t>{9999});
  authz::Connection to_9999;
  to_9999.dst_port = 9999;
  authz::Connection to_80;
  to_80.dst_port = 80;
  EXPECT_FALSE(p.Matches(to_9999));
  EXPECT_TRUE(p.Matches(to_80));

  // What a node proxy does with it: the VIP reaches an endpoint.
  runtime::WorkloadDirectory dir;
  for (const runtime::Service& s : c->services) ASSERT_TRUE(dir.UpsertService(s).ok());
  for (const runtime::Workload& w : c->workloads) ASSERT_TRUE(dir.Upsert(w).ok());
  absl::StatusOr<runtime::OutboundRoute> r = runtime::DecideOutbound(
      dir.Read(), local, *ambient::SocketAddress::Parse("127.0.0.1:5000"),
      *ambient::SocketAddress::Parse("127.10.0.1:80"), 15008, [](uint64_t) { return 0; });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->hbone_target.ToString(), "127.0.0.1:8080");
  EXPECT_EQ(r->destination_service, "example.com");
}

TEST(LocalConfigTest, BothPolicyShapesDecodeTheSame) {
  const char* ztunnel_shape = R"(
policies:
- name: allow-a
  namespace: ns1
  scope: WorkloadSelector
  action: Deny
  dryRun: true
  rules:
  - - - principals: [{Exact: "cluster.local/ns/a/sa/a"}, {Presence: []}]
        notNamespaces: [{Prefix: "kube-"}]
        serviceAccounts: [{namespace: a, serviceAccount: b}]
        sourceIps: ["198.18.0.0/16"]
        destinationPorts: [8080]
)";
  const char* istio_shape = R"(
policies:
- name: allow-a
  namespace: ns1
  scope: WORKLOAD_SELECTOR
  action: DENY
  dryRun: true
  rules:
  - clauses:
    - matches:
      - principals: [{exact: "cluster.local/ns/a/sa/a"}, {presence: {}}]
        notNamespaces: [{prefix: "kube-"}]
        serviceAccounts: [{namespace: a, serviceAccount: b}]
        sourceIps: [{address: "xhIAAA==", length: 16}]
        destinationPorts: [8080]
)";
  absl::StatusOr<LocalConfig> a = ParseLocalConfig(ztunnel_shape);
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<LocalConfig> b = ParseLocalConfig(istio_shape);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(a->policies.size(), 1u);
  ASSERT_EQ(b->policies.size(), 1u);
  for (const LocalConfig* c : {&*a, &*b}) {
    const authz::Policy& p = c->policies[0];
    EXPECT_EQ(p.key(), "ns1/allow-a");
    EXPECT_EQ(p.scope, authz::Scope::kWorkloadSelector);
    EXPECT_EQ(p.action, authz::Action::kDeny);
    EXPECT_TRUE(p.dry_run);
    ASSERT_EQ(p.rules.size(), 1u);
    const authz::Match& m = p.rules[0].clauses[0].matches[0];
    ASSERT_EQ(m.principals.size(), 2u);
    EXPECT_EQ(m.principals[0].kind(), authz::StringMatch::Kind::kExact);
    EXPECT_EQ(m.principals[1].kind(), authz::StringMatch::Kind::kPresence);
    ASSERT_EQ(m.not_namespaces.size(), 1u);
    EXPECT_EQ(m.not_namespaces[0].value(), "kube-");
    ASSERT_EQ(m.service_accounts.size(), 1u);
    EXPECT_EQ(m.service_accounts[0].service_account, "b");
    ASSERT_EQ(m.source_ips.size(), 1u);
    EXPECT_EQ(m.destination_ports, std::vector<uint16_t>{8080});
  }
}

TEST(LocalConfigTest, ServicesWaypointsAndLoadBalancing) {
  absl::StatusOr<LocalConfig> c = ParseLocalConfig(R"(
services:
- name: details
  namespace: default
  hostname: details.default.svc.cluster.local
  vips: ["/198.19.0.10", "/2001:db8:ff::10"]
  ports: {9080: 9080}
  waypoint: {destination: "default/waypoint.default.svc.cluster.local", hboneMtlsPort: 15008}
  loadBalancer: {routingPreferences: [Region, Zone], mode: Failover, healthPolicy: AllowAll}
workloads:
- uid: w1
  name: details-v1
  namespace: default
  serviceAccount: details
  workloadIps: ["198.18.2.2"]
  protocol: HBONE
  status: Unhealthy
  capacity: 3
  locality: {region: r1, zone: z1}
  waypoint: {destination: "/198.18.9.9", hboneMtlsPort: 15008}
  services: {"default/details.default.svc.cluster.local": {9080: 9081}}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  const runtime::Service& s = c->services[0];
  ASSERT_TRUE(s.waypoint.has_value());
  EXPECT_FALSE(s.waypoint->address.has_value());
  EXPECT_EQ(s.waypoint->hostname, "waypoint.default.svc.cluster.local");
  ASSERT_TRUE(s.load_balancing.has_value());
  EXPECT_EQ(s.load_balancing->mode, runtime::LoadBalancing::Mode::kFailover);
  EXPECT_EQ(s.load_balancing->routing_preference.size(), 2u);
  EXPECT_TRUE(s.load_balancing->allow_unhealthy);
  const runtime::Workload& w = c->workloads[0];
  EXPECT_FALSE(w.healthy);
  EXPECT_EQ(w.capacity, 3u);
  EXPECT_EQ(w.locality.zone, "z1");
  ASSERT_TRUE(w.waypoint && w.waypoint->address);
  EXPECT_EQ(w.waypoint->address->Key(), "/198.18.9.9");
  EXPECT_EQ(w.services.at("default/details.default.svc.cluster.local").at(9080), 9081);
}

TEST(LocalConfigTest, BadInputIsRefusedNamingThePlace) {
  struct Case {
    const char* text;
    const char* want;
  };
  for (const Case& c : std::vector<Case>{
           {"workloads: [{namespace: a, name: b, workloadIps: [], extra: 1}]",
            "workloads[0]: unknown field \"extra\""},
           {"workloads: [{namespace: a, name: b}]", "workloads[0].workloadIps: required"},
           {"workloads: [{namespace: a, name: b, workloadIps: [x]}]", "is not a numeric IP"},
           {"workloads: [{namespace: a, name: b, workloadIps: [], protocol: QUIC}]",
            "workloads[0].protocol: unknown value \"QUIC\""},
           {"workloads: [{namespace: a, name: b, workloadIps: [], networkGateway: "
            "{destination: /1.2.3.4, hboneMtlsPort: 15008}}]",
            "workloads[0].networkGateway: not supported"},
           {"services: [{name: a, namespace: b, hostname: c, vips: [nope], ports: {}}]",
            "services[0].vips[0]"},
           {"services: [{name: a, namespace: b, hostname: c, vips: [], ports: {80: 70000}}]",
            "services[0].ports.80: want a number from 0 to 65535"},
           {"services: [{name: a, namespace: b, hostname: c, vips: [], ports: {},"
            " loadBalancer: {mode: Random}}]",
            "services[0].loadBalancer.mode: unknown value \"Random\""},
           {"policies: [{name: p, namespace: n, rules: [[[{principals: [{Regex: x}]}]]]}]",
            "policies[0].rules[0][0][0].principals[0]: unknown string match \"Regex\""},
           {"policies: [{name: p, namespace: n, scope: NAMESPACE, bogus: 1}]", "policies[0]"},
           // Found by fuzz_local_config: JSON cannot carry it (was an uncaught
           // exception).
           {"policies: [{name: \"a\xff\", namespace: n, scope: NAMESPACE}]",
            "policies[0]: not valid UTF-8"},
           {"other: []", "unknown field \"other\""},
           {"workloads: {", "not valid YAML"},
           {"[1, 2]", "want a mapping"},
       }) {
    absl::StatusOr<LocalConfig> r = ParseLocalConfig(c.text, "cfg");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(r.status().message().find(c.want), absl::string_view::npos)
        << c.text << " -> " << r.status();
  }
  EXPECT_FALSE(ParseLocalConfig(std::string("workloads: []\0junk", 19)).ok());
  EXPECT_EQ(LoadLocalConfig("/nonexistent/x.yaml").status().code(), absl::StatusCode::kNotFound);
  // An endless file is refused at the size limit instead of filling memory.
  absl::StatusOr<LocalConfig> endless = LoadLocalConfig("/dev/zero");
  EXPECT_EQ(endless.status().code(), absl::StatusCode::kInvalidArgument) << endless.status();
  // Empty documents are an empty mesh.
  absl::StatusOr<LocalConfig> empty = ParseLocalConfig("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->workloads.empty());
}

}  // namespace
}  // namespace ambient::examples
