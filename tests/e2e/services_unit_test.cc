// Services, VIPs and waypoints without privileges: the directory's service
// model and the outbound decision (ztunnel's outbound.rs build_request).
#include <map>
#include <string>
#include <vector>

#include "ambient/runtime/outbound_decision.h"
#include "ambient/runtime/workload_directory.h"
#include "gtest/gtest.h"
#include "support/spiffe_ids.h"

namespace ambient::runtime {
namespace {

NetworkAddress Net(const std::string& text) { return *ParseNetworkAddress(text); }

SocketAddress Addr(const std::string& text) { return *SocketAddress::Parse(text); }

Workload Pod(const std::string& name, std::vector<std::string> ips) {
  Workload w;
  w.uid = "cluster//v1/Pod/default/" + name;
  w.name = name;
  w.ns = "default";
  w.service_account = name;
  w.addresses = std::move(ips);
  return w;
}

Service Svc(const std::string& name, std::vector<std::string> vips,
            std::map<uint16_t, uint16_t> ports) {
  Service s;
  s.name = name;
  s.ns = "default";
  s.hostname = name + ".default.svc.cluster.local";
  for (const std::string& v : vips) s.vips.push_back(Net(v));
  s.ports = std::move(ports);
  return s;
}

// Endpoint makes `w` an endpoint of `s` (with the service's port mapping).
Workload Endpoint(Workload w, const Service& s) {
  w.services[s.Key()] = {};
  return w;
}

GatewayAddress WaypointByHost(const std::string& host) {
  GatewayAddress g;
  g.hostname_namespace = "default";
  g.hostname = host;
  return g;
}

// Fixed returns a RandomFn that always answers `v` (mod n).
RandomFn Fixed(uint64_t v) {
  return [v](uint64_t n) { return v % n; };
}

TEST(ServiceDirectoryTest, FindsServicesByVipAndHostnameAndTheirEndpoints) {
  WorkloadDirectory d;
  Service details = Svc("details", {"/198.19.0.10", "/2001:db8:ff::10"}, {{9080, 9080}});
  ASSERT_TRUE(d.Upsert(Endpoint(Pod("details-v1", {"198.18.2.2"}), details)).ok());
  // The service arrives after its endpoint: the endpoint is still found.
  ASSERT_TRUE(d.UpsertService(details).ok());
  ASSERT_TRUE(d.Upsert(Endpoint(Pod("details-v2", {"198.18.2.3"}), details)).ok());
  EXPECT_EQ(d.service_count(), 1u);

  std::optional<Service> by_vip = d.ServiceByVip(Net("198.19.0.10"));
  ASSERT_TRUE(by_vip.has_value());
  EXPECT_EQ(by_vip->hostname, "details.default.svc.cluster.local");
  EXPECT_TRUE(d.ServiceByVip(Net("2001:db8:ff:0::10")).has_value());
  EXPECT_FALSE(d.ServiceByVip(Net("other/198.19.0.10")).has_value());  // another network
  EXPECT_FALSE(d.ServiceByVip(Net("198.19.0.11")).has_value());
  EXPECT_TRUE(d.ServiceByHostname("default", "details.default.svc.cluster.local").has_value());
  EXPECT_FALSE(d.ServiceByHostname("other", "details.default.svc.cluster.local").has_value());

  {
    WorkloadDirectory::View v = d.Read();
    std::vector<const Workload*> eps =
        v.Endpoints(*v.ServiceByHostname("default", "details.default.svc.cluster.local"));
    ASSERT_EQ(eps.size(), 2u);
  }
  // A workload that stops naming the service stops being its endpoint.
  ASSERT_TRUE(d.Upsert(Pod("details-v2", {"198.18.2.3"})).ok());
  EXPECT_TRUE(d.Remove(Pod("details-v1", {}).uid));
  {
    WorkloadDirectory::View v = d.Read();
    EXPECT_TRUE(v.Endpoints(*v.ServiceByVip(Net("198.19.0.10"), "")).empty());
  }
  EXPECT_TRUE(d.RemoveService("default", "details.default.svc.cluster.local"));
  EXPECT_FALSE(d.ServiceByVip(Net("198.19.0.10")).has_value());
  EXPECT_FALSE(d.RemoveService("default", "details.default.svc.cluster.local"));
}

TEST(ServiceDirectoryTest, InboundServiceIsTheOneWhoseTargetPortWasHit) {
  WorkloadDirectory d;
  Service details = Svc("details", {"198.19.0.10"}, {{9080, 9080}});
  Service named = Svc("named", {"198.19.0.11"}, {{80, 0}});
  ASSERT_TRUE(d.UpsertService(details).ok());
  ASSERT_TRUE(d.UpsertService(named).ok());
  Workload w = Endpoint(Pod("details-v1", {"198.18.2.2"}), details);
  w.services[named.Key()] = {{80, 7070}};
  ASSERT_TRUE(d.Upsert(w).ok());
  WorkloadDirectory::View v = d.Read();
  const Workload* in = v.WorkloadByUid(w.uid);
  ASSERT_NE(in, nullptr);
  ASSERT_NE(v.InboundService(*in, 9080), nullptr);
  EXPECT_EQ(v.InboundService(*in, 9080)->hostname, "details.default.svc.cluster.local");
  ASSERT_NE(v.InboundService(*in, 7070), nullptr);
  EXPECT_EQ(v.InboundService(*in, 7070)->hostname, "named.default.svc.cluster.local");
  EXPECT_EQ(v.InboundService(*in, 9081), nullptr);
}

TEST(ServiceDirectoryTest, SharedVipPrefersTheCallersNamespace) {
  WorkloadDirectory d;
  Service a = Svc("a", {"198.19.0.20"}, {{80, 8080}});
  Service b = Svc("b", {"198.19.0.20"}, {{80, 8080}});
  b.ns = "other";
  ASSERT_TRUE(d.UpsertService(a).ok());
  ASSERT_TRUE(d.UpsertService(b).ok());
  EXPECT_EQ(d.ServiceByVip(Net("198.19.0.20"), "other")->ns, "other");
  EXPECT_EQ(d.ServiceByVip(Net("198.19.0.20"), "default")->ns, "default");
  EXPECT_TRUE(d.ServiceByVip(Net("198.19.0.20"), "third").has_value());
}

// ForEachWorkload visits each workload once, as stored (no copies), and a
// removed one no more.
TEST(ServiceDirectoryTest, ForEachWorkloadVisitsEveryWorkloadOnce) {
  WorkloadDirectory dir;
  ASSERT_TRUE(dir.Upsert(Pod("a", {"198.18.0.1"})).ok());
  ASSERT_TRUE(dir.Upsert(Pod("b", {"198.18.0.2"})).ok());
  ASSERT_TRUE(dir.Upsert(Pod("c", {"198.18.0.3"})).ok());
  ASSERT_TRUE(dir.Remove(Pod("b", {}).uid));
  std::map<std::string, int> seen;
  dir.Read().ForEachWorkload([&](const Workload& w) { ++seen[w.name]; });
  EXPECT_EQ(seen, (std::map<std::string, int>{{"a", 1}, {"c", 1}}));
}

TEST(ServiceDirectoryTest, BadServicesAreRefusedAndChangeNothing) {
  WorkloadDirectory d;
  ASSERT_TRUE(d.UpsertService(Svc("a", {"198.19.0.1"}, {{80, 80}})).ok());
  // The same VIP in the same namespace.
  absl::Status st = d.UpsertService(Svc("b", {"198.19.0.1"}, {{80, 80}}));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("already belongs to default/a.default.svc.cluster.local"),
            std::string::npos)
      << st;
  EXPECT_EQ(d.UpsertService(Svc("", {}, {})).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(d.UpsertService(Svc("c", {}, {{0, 80}})).code(), absl::StatusCode::kInvalidArgument);
  Service bad_san = Svc("d", {}, {{80, 80}});
  bad_san.subject_alt_names = {"not a spiffe id"};
  EXPECT_EQ(d.UpsertService(bad_san).code(), absl::StatusCode::kInvalidArgument);
  Service bad_wp = Svc("e", {}, {{80, 80}});
  bad_wp.waypoint = GatewayAddress{};
  EXPECT_EQ(d.UpsertService(bad_wp).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(d.service_count(), 1u);
  Workload bad_key = Pod("x", {"198.18.9.9"});
  bad_key.services["no-slash"] = {};
  EXPECT_EQ(d.Upsert(bad_key).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(d.size(), 0u);
  EXPECT_FALSE(ParseNetworkAddress("net/not-an-ip").ok());
  EXPECT_FALSE(ParseNetworkAddress("").ok());
}

TEST(ServiceDirectoryTest, AddressesArePerNetwork) {
  WorkloadDirectory d;
  Workload a = Pod("a", {"198.18.1.1"});
  Workload b = Pod("b", {"198.18.1.1"});
  b.network = "remote";
  ASSERT_TRUE(d.Upsert(a).ok());
  ASSERT_TRUE(d.Upsert(b).ok());
  WorkloadDirectory::View v = d.Read();
  EXPECT_EQ(v.WorkloadByAddress(Net("198.18.1.1"))->name, "a");
  EXPECT_EQ(v.WorkloadByAddress(Net("remote/198.18.1.1"))->name, "b");
}

// Bookinfo-like fixture: a client, a "details" service with a waypoint, a
// "reviews" service with two endpoints and no waypoint.
class OutboundDecisionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client_ = Pod("productpage", {"198.18.1.2", "2001:db8::1:2"});
    ASSERT_TRUE(dir_.Upsert(client_).ok());

    Service waypoint_svc = Svc("waypoint", {"198.19.0.5"}, {{15008, 15008}});
    ASSERT_TRUE(dir_.UpsertService(waypoint_svc).ok());
    waypoint_ = Endpoint(Pod("waypoint", {"198.18.9.9"}), waypoint_svc);
    ASSERT_TRUE(dir_.Upsert(waypoint_).ok());

    Service details = Svc("details", {"198.19.0.10"}, {{9080, 9080}});
    details.waypoint = WaypointByHost("waypoint.default.svc.cluster.local");
    ASSERT_TRUE(dir_.UpsertService(details).ok());
    ASSERT_TRUE(dir_.Upsert(Endpoint(Pod("details-v1", {"198.18.2.2"}), details)).ok());

    Service reviews = Svc("reviews", {"198.19.0.20", "2001:db8:ff::20"}, {{9080, 8080}});
    reviews.subject_alt_names = {"spiffe://cluster.local/ns/default/sa/reviews-extra"};
    ASSERT_TRUE(dir_.UpsertService(reviews).ok());
    ASSERT_TRUE(
        dir_.Upsert(Endpoint(Pod("reviews-v1", {"198.18.3.1", "2001:db8::3:1"}), reviews)).ok());
    ASSERT_TRUE(
        dir_.Upsert(Endpoint(Pod("reviews-v2", {"198.18.3.2", "2001:db8::3:2"}), reviews)).ok());
  }

  absl::StatusOr<OutboundRoute> Decide(const std::string& target, RandomFn random = nullptr,
                                       const std::string& from = "198.18.1.2:40000") {
    return DecideOutbound(dir_.Read(), client_, Addr(from), Addr(target), 15008, random);
  }

  WorkloadDirectory dir_;
  Workload client_;
  Workload waypoint_;
};

TEST_F(OutboundDecisionTest, VipWithoutWaypointGoesToAnEndpointOverHbone) {
  absl::StatusOr<OutboundRoute> r = Decide("198.19.0.20:9080", Fixed(1));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, OutboundRoute::Kind::kHbone);
  EXPECT_EQ(r->next_hop.ToString(), "198.18.3.2:15008");
  EXPECT_EQ(r->hbone_target.ToString(), "198.18.3.2:8080");  // endpoint IP : target port
  EXPECT_EQ(r->destination_service, "reviews.default.svc.cluster.local");
  ASSERT_TRUE(r->destination.has_value());
  EXPECT_EQ(r->destination->name, "reviews-v2");
  EXPECT_EQ(r->expected_identities,
            test_support::Ids({"spiffe://cluster.local/ns/default/sa/reviews-extra",
                               "spiffe://cluster.local/ns/default/sa/reviews-v2"}));
  EXPECT_FALSE(r->via_waypoint);
}

TEST_F(OutboundDecisionTest, Ipv6VipPicksTheEndpointsIpv6Address) {
  absl::StatusOr<OutboundRoute> r = Decide("[2001:db8:ff::20]:9080", Fixed(0), "[2001:db8::1:2]:1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->next_hop.ToString(), "[2001:db8::3:1]:15008");
  EXPECT_EQ(r->hbone_target.ToString(), "[2001:db8::3:1]:8080");
}

TEST_F(OutboundDecisionTest, DefaultRandomSpreadsOverEndpoints) {
  std::map<std::string, int> seen;
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<OutboundRoute> r = Decide("198.19.0.20:9080");
    ASSERT_TRUE(r.ok()) << r.status();
    seen[r->destination->name]++;
  }
  EXPECT_GT(seen["reviews-v1"], 0);
  EXPECT_GT(seen["reviews-v2"], 0);
  EXPECT_EQ(seen.size(), 2u);
}

TEST_F(OutboundDecisionTest, UnhealthyEndpointsAreSkippedUnlessAllowAll) {
  Workload v1 = *dir_.ByName("default", "reviews-v1");
  v1.healthy = false;
  ASSERT_TRUE(dir_.Upsert(v1).ok());
  for (uint64_t i = 0; i < 4; ++i) {
    absl::StatusOr<OutboundRoute> r = Decide("198.19.0.20:9080", Fixed(i));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->destination->name, "reviews-v2");
  }
  Service reviews = *dir_.ServiceByHostname("default", "reviews.default.svc.cluster.local");
  reviews.load_balancing = LoadBalancing{};
  reviews.load_balancing->allow_unhealthy = true;
  ASSERT_TRUE(dir_.UpsertService(reviews).ok());
  absl::StatusOr<OutboundRoute> r = Decide("198.19.0.20:9080", Fixed(0));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->destination->name, "reviews-v1");
}

TEST_F(OutboundDecisionTest, NoHealthyEndpointOrUnknownPortIsRefusedWithZtunnelsText) {
  for (const char* name : {"reviews-v1", "reviews-v2"}) {
    Workload w = *dir_.ByName("default", name);
    w.healthy = false;
    ASSERT_TRUE(dir_.Upsert(w).ok());
  }
  absl::StatusOr<OutboundRoute> r = Decide("198.19.0.20:9080");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "no healthy upstream: 198.19.0.20:9080");
  // details has a healthy endpoint but no port 81.
  Service d = *dir_.ServiceByHostname("default", "details.default.svc.cluster.local");
  d.waypoint.reset();
  ASSERT_TRUE(dir_.UpsertService(d).ok());
  r = Decide("198.19.0.10:81");
  EXPECT_EQ(r.status().message(), "no healthy upstream: 198.19.0.10:81");
  ASSERT_TRUE(Decide("198.19.0.10:9080").ok());
}

TEST_F(OutboundDecisionTest, ServiceWithWaypointGoesToTheWaypointWithTheVipAsAuthority) {
  absl::StatusOr<OutboundRoute> r = Decide("198.19.0.10:9080");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, OutboundRoute::Kind::kHbone);
  EXPECT_TRUE(r->via_waypoint);
  EXPECT_EQ(r->next_hop.ToString(), "198.18.9.9:15008");
  EXPECT_EQ(r->hbone_target.ToString(), "198.19.0.10:9080");
  EXPECT_EQ(r->destination_service, "details.default.svc.cluster.local");
  ASSERT_TRUE(r->destination.has_value());
  EXPECT_EQ(r->destination->name, "waypoint");
  EXPECT_EQ(r->expected_identities,
            test_support::Ids({"spiffe://cluster.local/ns/default/sa/waypoint"}));
}

TEST_F(OutboundDecisionTest, WaypointByAddressAndUnknownWaypoint) {
  Service d = *dir_.ServiceByHostname("default", "details.default.svc.cluster.local");
  d.waypoint = GatewayAddress{};
  d.waypoint->address = Net("198.18.9.9");  // the waypoint pod itself
  ASSERT_TRUE(dir_.UpsertService(d).ok());
  absl::StatusOr<OutboundRoute> r = Decide("198.19.0.10:9080");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->next_hop.ToString(), "198.18.9.9:15008");
  EXPECT_EQ(r->destination->name, "waypoint");

  d.waypoint->address = Net("198.19.0.5");  // the waypoint's service VIP
  ASSERT_TRUE(dir_.UpsertService(d).ok());
  r = Decide("198.19.0.10:9080");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->next_hop.ToString(), "198.18.9.9:15008");

  d.waypoint = WaypointByHost("nowhere.default.svc.cluster.local");
  ASSERT_TRUE(dir_.UpsertService(d).ok());
  r = Decide("198.19.0.10:9080");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(),
            "unknown waypoint: waypoint nowhere.default.svc.cluster.local not found");
}

TEST_F(OutboundDecisionTest, WorkloadBehindAWaypointIsReachedThroughIt) {
  Workload v1 = *dir_.ByName("default", "reviews-v1");
  v1.waypoint = WaypointByHost("waypoint.default.svc.cluster.local");
  ASSERT_TRUE(dir_.Upsert(v1).ok());
  absl::StatusOr<OutboundRoute> r = Decide("198.18.3.1:8080");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->via_waypoint);
  EXPECT_EQ(r->next_hop.ToString(), "198.18.9.9:15008");
  EXPECT_EQ(r->hbone_target.ToString(), "198.18.3.1:8080");
  EXPECT_EQ(r->destination_service, "");
  EXPECT_EQ(r->destination->name, "waypoint");

  // Service-addressed traffic does not use the workload's waypoint.
  r = Decide("198.19.0.20:9080", Fixed(0));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->via_waypoint);
  EXPECT_EQ(r->next_hop.ToString(), "198.18.3.1:15008");

  // The waypoint itself (its identity and IP) goes straight to the pod.
  absl::StatusOr<OutboundRoute> from_wp = DecideOutbound(
      dir_.Read(), waypoint_, Addr("198.18.9.9:5000"), Addr("198.18.3.1:8080"), 15008);
  ASSERT_TRUE(from_wp.ok()) << from_wp.status();
  EXPECT_FALSE(from_wp->via_waypoint);
  EXPECT_EQ(from_wp->next_hop.ToString(), "198.18.3.1:15008");
  // The waypoint's identity from another IP is not the waypoint.
  from_wp = DecideOutbound(dir_.Read(), waypoint_, Addr("198.18.1.2:5000"), Addr("198.18.3.1:8080"),
                           15008);
  ASSERT_TRUE(from_wp.ok());
  EXPECT_TRUE(from_wp->via_waypoint);
}

TEST_F(OutboundDecisionTest, AtTheWaypointAVipGoesToAnEndpointNotBackToTheWaypoint) {
  // What pod A's node proxy sends to the waypoint ...
  absl::StatusOr<OutboundRoute> r = Decide("198.19.0.10:9080");
  ASSERT_TRUE(r.ok() && r->via_waypoint);
  // ... the waypoint carries on to the service's endpoint, with the
  // endpoint as :authority and its identity expected.
  r = DecideAtWaypoint(dir_.Read(), waypoint_, Addr("198.19.0.10:9080"), 15008);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->via_waypoint);
  EXPECT_EQ(r->kind, OutboundRoute::Kind::kHbone);
  EXPECT_EQ(r->next_hop.ToString(), "198.18.2.2:15008");
  EXPECT_EQ(r->hbone_target.ToString(), "198.18.2.2:9080");
  EXPECT_EQ(r->destination_service, "details.default.svc.cluster.local");
  EXPECT_EQ(r->destination->name, "details-v1");
  EXPECT_EQ(r->expected_identities,
            test_support::Ids({"spiffe://cluster.local/ns/default/sa/details-v1"}));
  // A workload behind the waypoint, addressed by IP: straight to it.
  Workload v1 = *dir_.ByName("default", "reviews-v1");
  v1.waypoint = WaypointByHost("waypoint.default.svc.cluster.local");
  ASSERT_TRUE(dir_.Upsert(v1).ok());
  r = DecideAtWaypoint(dir_.Read(), waypoint_, Addr("198.18.3.1:8080"), 15008);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->via_waypoint);
  EXPECT_EQ(r->next_hop.ToString(), "198.18.3.1:15008");
  EXPECT_EQ(r->hbone_target.ToString(), "198.18.3.1:8080");
  // A service port the service lacks: ztunnel's refusal text.
  r = DecideAtWaypoint(dir_.Read(), waypoint_, Addr("198.19.0.10:81"), 15008);
  EXPECT_EQ(r.status().message(), "no healthy upstream: 198.19.0.10:81");
}

TEST_F(OutboundDecisionTest, WorkloadIpAndUnknownDestinations) {
  absl::StatusOr<OutboundRoute> r = Decide("198.18.2.2:9080");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, OutboundRoute::Kind::kHbone);
  EXPECT_EQ(r->next_hop.ToString(), "198.18.2.2:15008");
  EXPECT_EQ(r->hbone_target.ToString(), "198.18.2.2:9080");
  EXPECT_EQ(r->destination_service, "");

  Workload plain = Pod("legacy", {"198.18.7.7"});
  plain.hbone = false;
  ASSERT_TRUE(dir_.Upsert(plain).ok());
  r = Decide("198.18.7.7:80");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, OutboundRoute::Kind::kPassthrough);
  EXPECT_EQ(r->next_hop.ToString(), "198.18.7.7:80");
  EXPECT_EQ(r->destination->name, "legacy");

  r = Decide("203.0.113.1:443");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, OutboundRoute::Kind::kPassthrough);
  EXPECT_EQ(r->next_hop.ToString(), "203.0.113.1:443");
  EXPECT_FALSE(r->destination.has_value());

  // A non-HBONE endpoint behind a VIP: plain TCP to its IP and target port.
  Service legacy = Svc("legacy", {"198.19.0.77"}, {{80, 8080}});
  ASSERT_TRUE(dir_.UpsertService(legacy).ok());
  ASSERT_TRUE(dir_.Upsert(Endpoint(plain, legacy)).ok());
  r = Decide("198.19.0.77:80");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, OutboundRoute::Kind::kPassthrough);
  EXPECT_EQ(r->next_hop.ToString(), "198.18.7.7:8080");

  // PASSTHROUGH services go to the original destination.
  legacy.load_balancing = LoadBalancing{};
  legacy.load_balancing->mode = LoadBalancing::Mode::kPassthrough;
  ASSERT_TRUE(dir_.UpsertService(legacy).ok());
  r = Decide("198.19.0.77:80");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->next_hop.ToString(), "198.19.0.77:80");
}

TEST_F(OutboundDecisionTest, EndpointPortMappingWinsOverTheServices) {
  Service s = Svc("named", {"198.19.0.30"}, {{80, 0}});  // target port by name
  ASSERT_TRUE(dir_.UpsertService(s).ok());
  Workload a = Pod("named-a", {"198.18.4.1"});
  a.services[s.Key()] = {{80, 7070}};
  Workload b = Pod("named-b", {"198.18.4.2"});
  b.services[s.Key()] = {};  // no mapping for port 80: not a candidate
  ASSERT_TRUE(dir_.Upsert(a).ok());
  ASSERT_TRUE(dir_.Upsert(b).ok());
  for (uint64_t i = 0; i < 3; ++i) {
    absl::StatusOr<OutboundRoute> r = Decide("198.19.0.30:80", Fixed(i));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->hbone_target.ToString(), "198.18.4.1:7070");
  }
}

TEST_F(OutboundDecisionTest, StrictAndFailoverLocality) {
  client_.locality = {"r1", "z1", ""};
  ASSERT_TRUE(dir_.Upsert(client_).ok());
  Workload v1 = *dir_.ByName("default", "reviews-v1");
  v1.locality = {"r1", "z2", ""};
  Workload v2 = *dir_.ByName("default", "reviews-v2");
  v2.locality = {"r2", "z1", ""};
  ASSERT_TRUE(dir_.Upsert(v1).ok());
  ASSERT_TRUE(dir_.Upsert(v2).ok());
  Service reviews = *dir_.ServiceByHostname("default", "reviews.default.svc.cluster.local");
  reviews.load_balancing = LoadBalancing{};
  reviews.load_balancing->routing_preference = {LoadBalancing::Scope::kRegion,
                                                LoadBalancing::Scope::kZone};
  reviews.load_balancing->mode = LoadBalancing::Mode::kFailover;
  ASSERT_TRUE(dir_.UpsertService(reviews).ok());
  // FAILOVER: v1 matches the region (rank 1), v2 nothing (rank 0).
  for (uint64_t i = 0; i < 4; ++i) {
    absl::StatusOr<OutboundRoute> r = Decide("198.19.0.20:9080", Fixed(i));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->destination->name, "reviews-v1");
  }
  // STRICT: nobody matches region and zone.
  reviews.load_balancing->mode = LoadBalancing::Mode::kStrict;
  ASSERT_TRUE(dir_.UpsertService(reviews).ok());
  EXPECT_EQ(Decide("198.19.0.20:9080").status().message(), "no healthy upstream: 198.19.0.20:9080");
  // STRICT on the region only: v1.
  reviews.load_balancing->routing_preference = {LoadBalancing::Scope::kRegion};
  ASSERT_TRUE(dir_.UpsertService(reviews).ok());
  absl::StatusOr<OutboundRoute> r = Decide("198.19.0.20:9080", Fixed(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->destination->name, "reviews-v1");
}

TEST_F(OutboundDecisionTest, CapacityWeighsThePick) {
  Workload v2 = *dir_.ByName("default", "reviews-v2");
  v2.capacity = 3;
  ASSERT_TRUE(dir_.Upsert(v2).ok());
  std::map<std::string, int> seen;
  for (uint64_t i = 0; i < 4; ++i) seen[Decide("198.19.0.20:9080", Fixed(i))->destination->name]++;
  EXPECT_EQ(seen["reviews-v1"], 1);
  EXPECT_EQ(seen["reviews-v2"], 3);
}

}  // namespace
}  // namespace ambient::runtime
