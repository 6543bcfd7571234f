// xds::AddressHandler and DecodeAddress with istio.workload.Address messages
// built by hand: every field that reaches the directory, every rejection, and
// that a rejected resource changes nothing while its neighbours are applied.
#include "ambient/xds/address_handler.h"

#include <string>
#include <variant>
#include <vector>

#include "gtest/gtest.h"
#include "workload.pb.h"

namespace ambient::xds {
namespace {

namespace wl = ::ambient::wire::istio::workload;

std::string V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return std::string(
      {static_cast<char>(a), static_cast<char>(b), static_cast<char>(c), static_cast<char>(d)});
}
std::string V6Doc(uint8_t last) {  // 2001:db8::last
  std::string s(16, '\0');
  s[0] = 0x20;
  s[1] = 0x01;
  s[2] = 0x0d;
  s[3] = static_cast<char>(0xb8);
  s[15] = static_cast<char>(last);
  return s;
}

wl::Workload PodA() {
  wl::Workload w;
  w.set_uid("Kubernetes//Pod/ns1/a");
  w.set_name("a");
  w.set_namespace_("ns1");
  w.add_addresses(V4(198, 18, 0, 10));
  w.set_tunnel_protocol(wl::HBONE);
  return w;
}
std::string Bytes(const wl::Workload& w) {
  wl::Address a;
  *a.mutable_workload() = w;
  return a.SerializeAsString();
}
wl::Service SvcA() {
  wl::Service s;
  s.set_name("svc");
  s.set_namespace_("ns1");
  s.set_hostname("svc.ns1.svc.cluster.local");
  wl::NetworkAddress* vip = s.add_addresses();
  vip->set_address(V4(198, 19, 0, 1));
  wl::Port* p = s.add_ports();
  p->set_service_port(80);
  p->set_target_port(8080);
  return s;
}
std::string Bytes(const wl::Service& s) {
  wl::Address a;
  *a.mutable_service() = s;
  return a.SerializeAsString();
}

runtime::Workload DecodeWorkload(const wl::Workload& w) {
  auto a = DecodeAddress(Bytes(w));
  EXPECT_TRUE(a.ok()) << a.status();
  if (!a.ok() || !std::holds_alternative<runtime::Workload>(*a)) return {};
  return std::get<runtime::Workload>(*a);
}
runtime::Service DecodeService(const wl::Service& s) {
  auto a = DecodeAddress(Bytes(s));
  EXPECT_TRUE(a.ok()) << a.status();
  if (!a.ok() || !std::holds_alternative<runtime::Service>(*a)) return {};
  return std::get<runtime::Service>(*a);
}
std::string WorkloadError(const wl::Workload& w) {
  auto a = DecodeAddress(Bytes(w));
  EXPECT_FALSE(a.ok());
  return a.ok() ? "" : std::string(a.status().message());
}
std::string ServiceError(const wl::Service& s) {
  auto a = DecodeAddress(Bytes(s));
  EXPECT_FALSE(a.ok());
  return a.ok() ? "" : std::string(a.status().message());
}

TEST(DecodeAddressTest, AMinimalWorkloadGetsZtunnelsDefaults) {
  runtime::Workload w = DecodeWorkload(PodA());
  EXPECT_EQ(w.uid, "Kubernetes//Pod/ns1/a");
  EXPECT_EQ(w.name, "a");
  EXPECT_EQ(w.ns, "ns1");
  EXPECT_EQ(w.addresses, std::vector<std::string>{"198.18.0.10"});
  EXPECT_TRUE(w.hbone);
  EXPECT_EQ(w.trust_domain, "cluster.local");
  EXPECT_EQ(w.service_account, "default");
  EXPECT_EQ(w.cluster, "Kubernetes");
  EXPECT_EQ(w.capacity, 1u);
  EXPECT_TRUE(w.healthy);
  EXPECT_FALSE(w.waypoint.has_value());
  EXPECT_TRUE(w.services.empty());
  ASSERT_TRUE(w.Identity().ok());
  EXPECT_EQ(w.Identity()->str(), "spiffe://cluster.local/ns/ns1/sa/default");
}

TEST(DecodeAddressTest, EveryWorkloadFieldIsCarried) {
  wl::Workload x = PodA();
  x.add_addresses(V6Doc(7));
  x.set_network("net1");
  x.set_tunnel_protocol(wl::NONE);
  x.set_trust_domain("td.example");
  x.set_service_account("sa-a");
  x.set_node("node-1");
  x.set_canonical_name("app-a");
  x.set_canonical_revision("v2");
  x.set_cluster_id("c1");
  x.add_authorization_policies("ns1/allow-b");
  x.set_status(wl::UNHEALTHY);
  x.mutable_locality()->set_region("r");
  x.mutable_locality()->set_zone("z");
  x.mutable_locality()->set_subzone("s");
  x.mutable_capacity()->set_value(5);
  wl::PortList pl;
  wl::Port* p = pl.add_ports();
  p->set_service_port(80);
  p->set_target_port(8080);
  (*x.mutable_services())["ns1/svc.ns1.svc.cluster.local"] = pl;
  (*x.mutable_services())["ns2/other"] = wl::PortList();
  wl::GatewayAddress* wp = x.mutable_waypoint();
  wp->mutable_address()->set_network("net1");
  wp->mutable_address()->set_address(V4(198, 18, 0, 99));
  wp->set_hbone_mtls_port(15008);

  runtime::Workload w = DecodeWorkload(x);
  EXPECT_EQ(w.addresses, (std::vector<std::string>{"198.18.0.10", "2001:db8::7"}));
  EXPECT_EQ(w.network, "net1");
  EXPECT_FALSE(w.hbone);
  EXPECT_EQ(w.trust_domain, "td.example");
  EXPECT_EQ(w.service_account, "sa-a");
  EXPECT_EQ(w.node, "node-1");
  EXPECT_EQ(w.canonical_service, "app-a");
  EXPECT_EQ(w.canonical_revision, "v2");
  EXPECT_EQ(w.cluster, "c1");
  EXPECT_EQ(w.policies, std::vector<std::string>{"ns1/allow-b"});
  EXPECT_FALSE(w.healthy);
  EXPECT_EQ(w.locality.region, "r");
  EXPECT_EQ(w.locality.zone, "z");
  EXPECT_EQ(w.locality.subzone, "s");
  EXPECT_EQ(w.capacity, 5u);
  EXPECT_EQ(w.services.size(), 2u);
  EXPECT_EQ(w.services["ns1/svc.ns1.svc.cluster.local"],
            (std::map<uint16_t, uint16_t>{{80, 8080}}));
  EXPECT_TRUE(w.services["ns2/other"].empty());
  ASSERT_TRUE(w.waypoint.has_value());
  ASSERT_TRUE(w.waypoint->address.has_value());
  EXPECT_EQ(w.waypoint->address->Key(), "net1/198.18.0.99");
  EXPECT_EQ(w.waypoint->hbone_mtls_port, 15008);

  x.mutable_capacity()->set_value(0);  // set to 0: kept (the directory counts it as 1)
  EXPECT_EQ(DecodeWorkload(x).capacity, 0u);
  wl::GatewayAddress* host = x.mutable_waypoint();
  host->mutable_hostname()->set_namespace_("ns1");
  host->mutable_hostname()->set_hostname("wp.ns1.svc.cluster.local");
  w = DecodeWorkload(x);
  ASSERT_TRUE(w.waypoint.has_value());
  EXPECT_FALSE(w.waypoint->address.has_value());
  EXPECT_EQ(w.waypoint->hostname_namespace, "ns1");
  EXPECT_EQ(w.waypoint->hostname, "wp.ns1.svc.cluster.local");
}

TEST(DecodeAddressTest, WorkloadsThatDoNotFitAreRefusedWithTheField) {
  wl::Workload x = PodA();
  x.add_addresses("12345");
  EXPECT_EQ(WorkloadError(x), "workload addresses[1]: 5 bytes, want 4 (IPv4) or 16 (IPv6)");
  x = PodA();
  x.add_addresses("");
  EXPECT_EQ(WorkloadError(x), "workload addresses[1]: 0 bytes, want 4 (IPv4) or 16 (IPv6)");
  x = PodA();
  x.set_tunnel_protocol(wl::LEGACY_ISTIO_MTLS);
  EXPECT_EQ(WorkloadError(x),
            "workload tunnel_protocol: unsupported tunnel protocol: legacy istio mtls");
  x = PodA();
  x.set_tunnel_protocol(static_cast<wl::TunnelProtocol>(9));
  EXPECT_EQ(WorkloadError(x), "workload tunnel_protocol: unknown value 9");
  x = PodA();
  x.set_status(static_cast<wl::WorkloadStatus>(4));
  EXPECT_EQ(WorkloadError(x), "workload status: unknown value 4");
  x = PodA();
  x.set_network_mode(static_cast<wl::NetworkMode>(3));
  EXPECT_EQ(WorkloadError(x), "workload network_mode: unknown value 3");
  x = PodA();
  x.mutable_application_tunnel()->set_protocol(static_cast<wl::ApplicationTunnel::Protocol>(7));
  EXPECT_EQ(WorkloadError(x), "workload application_tunnel.protocol: unknown value 7");
  x = PodA();
  x.mutable_waypoint()->set_hbone_mtls_port(15008);
  EXPECT_EQ(WorkloadError(x), "workload waypoint: no destination (address or hostname)");
  x = PodA();
  x.mutable_waypoint()->mutable_address()->set_address("abc");
  EXPECT_EQ(WorkloadError(x), "workload waypoint.address: 3 bytes, want 4 (IPv4) or 16 (IPv6)");
  x = PodA();
  x.mutable_waypoint()->mutable_address()->set_address(V4(1, 2, 3, 4));
  x.mutable_waypoint()->set_hbone_mtls_port(70000);
  EXPECT_EQ(WorkloadError(x), "workload waypoint.hbone_mtls_port: port 70000 is above 65535");
  x = PodA();
  x.mutable_network_gateway()->set_hbone_mtls_port(15008);
  EXPECT_EQ(WorkloadError(x), "workload network_gateway: no destination (address or hostname)");
  x = PodA();
  (*x.mutable_services())["no-slash"] = wl::PortList();
  EXPECT_EQ(WorkloadError(x), "workload services[\"no-slash\"]: key is not \"namespace/hostname\"");
  x = PodA();
  wl::PortList pl;
  pl.add_ports()->set_service_port(65536);
  (*x.mutable_services())["ns1/s"] = pl;
  EXPECT_EQ(WorkloadError(x),
            "workload services[\"ns1/s\"][0].service_port: port 65536 is above 65535");
}

TEST(DecodeAddressTest, EveryServiceFieldIsCarried) {
  wl::Service x = SvcA();
  wl::NetworkAddress* v6 = x.add_addresses();
  v6->set_network("net2");
  v6->set_address(V6Doc(1));
  v6->set_length(128);  // the whole address: a plain VIP
  x.add_subject_alt_names("spiffe://cluster.local/ns/ns1/sa/other");
  x.mutable_waypoint()->mutable_hostname()->set_namespace_("ns1");
  x.mutable_waypoint()->mutable_hostname()->set_hostname("wp");
  x.mutable_waypoint()->set_hbone_mtls_port(15008);
  wl::LoadBalancing* lb = x.mutable_load_balancing();
  lb->add_routing_preference(wl::LoadBalancing::NETWORK);
  lb->add_routing_preference(wl::LoadBalancing::REGION);
  lb->add_routing_preference(wl::LoadBalancing::ZONE);
  lb->add_routing_preference(wl::LoadBalancing::SUBZONE);
  lb->add_routing_preference(wl::LoadBalancing::NODE);
  lb->add_routing_preference(wl::LoadBalancing::CLUSTER);
  lb->set_mode(wl::LoadBalancing::FAILOVER);
  lb->set_health_policy(wl::LoadBalancing::ALLOW_ALL);
  wl::Port* named = x.add_ports();
  named->set_service_port(9090);  // target 0: the endpoint's own mapping

  runtime::Service s = DecodeService(x);
  EXPECT_EQ(s.name, "svc");
  EXPECT_EQ(s.ns, "ns1");
  EXPECT_EQ(s.hostname, "svc.ns1.svc.cluster.local");
  EXPECT_EQ(s.Key(), "ns1/svc.ns1.svc.cluster.local");
  ASSERT_EQ(s.vips.size(), 2u);
  EXPECT_EQ(s.vips[0].Key(), "/198.19.0.1");
  EXPECT_EQ(s.vips[1].Key(), "net2/2001:db8::1");
  EXPECT_EQ(s.ports, (std::map<uint16_t, uint16_t>{{80, 8080}, {9090, 0}}));
  EXPECT_EQ(s.subject_alt_names,
            std::vector<std::string>{"spiffe://cluster.local/ns/ns1/sa/other"});
  ASSERT_TRUE(s.waypoint.has_value());
  EXPECT_EQ(s.waypoint->ToString(), "ns1/wp");
  ASSERT_TRUE(s.load_balancing.has_value());
  using Scope = runtime::LoadBalancing::Scope;
  EXPECT_EQ(s.load_balancing->routing_preference,
            (std::vector<Scope>{Scope::kNetwork, Scope::kRegion, Scope::kZone, Scope::kSubzone,
                                Scope::kNode, Scope::kCluster}));
  EXPECT_EQ(s.load_balancing->mode, runtime::LoadBalancing::Mode::kFailover);
  EXPECT_TRUE(s.load_balancing->allow_unhealthy);

  x.mutable_load_balancing()->set_mode(wl::LoadBalancing::STRICT);
  EXPECT_EQ(DecodeService(x).load_balancing->mode, runtime::LoadBalancing::Mode::kStrict);
  x.mutable_load_balancing()->set_mode(wl::LoadBalancing::PASSTHROUGH);
  EXPECT_EQ(DecodeService(x).load_balancing->mode, runtime::LoadBalancing::Mode::kPassthrough);
  x.mutable_load_balancing()->set_mode(wl::LoadBalancing::UNSPECIFIED_MODE);
  EXPECT_EQ(DecodeService(x).load_balancing->mode, runtime::LoadBalancing::Mode::kStandard);
  EXPECT_FALSE(DecodeService(SvcA()).load_balancing.has_value());
}

TEST(DecodeAddressTest, ServicesThatDoNotFitAreRefusedWithTheField) {
  wl::Service x = SvcA();
  x.add_addresses()->set_address("123456");
  EXPECT_EQ(ServiceError(x), "service addresses[1]: 6 bytes, want 4 (IPv4) or 16 (IPv6)");
  x = SvcA();
  x.mutable_addresses(0)->set_length(24);
  EXPECT_EQ(ServiceError(x), "service addresses[0]: CIDR VIP /24 is not supported");
  x.mutable_addresses(0)->set_length(33);
  EXPECT_EQ(ServiceError(x), "service addresses[0]: prefix length 33 is above 32");
  x = SvcA();
  x.mutable_ports(0)->set_target_port(1u << 20);
  EXPECT_EQ(ServiceError(x), "service ports[0].target_port: port 1048576 is above 65535");
  x = SvcA();
  x.mutable_load_balancing()->add_routing_preference(wl::LoadBalancing::UNSPECIFIED_SCOPE);
  EXPECT_EQ(ServiceError(x), "service load_balancing.routing_preference[0]: invalid scope 0");
  x = SvcA();
  x.mutable_load_balancing()->set_mode(static_cast<wl::LoadBalancing::Mode>(8));
  EXPECT_EQ(ServiceError(x), "service load_balancing.mode: unknown value 8");
  x = SvcA();
  x.mutable_load_balancing()->set_health_policy(static_cast<wl::LoadBalancing::HealthPolicy>(2));
  EXPECT_EQ(ServiceError(x), "service load_balancing.health_policy: unknown value 2");
  x = SvcA();
  x.set_ip_families(static_cast<wl::IPFamilies>(4));
  EXPECT_EQ(ServiceError(x), "service ip_families: unknown value 4");
  x = SvcA();
  x.mutable_waypoint();
  EXPECT_EQ(ServiceError(x), "service waypoint: no destination (address or hostname)");
  x = SvcA();
  x.set_hostname("a/b");
  EXPECT_EQ(ServiceError(x), "service: namespace and hostname must not contain '/'");
  x = SvcA();
  x.add_weighted_waypoints()->set_weight(1);
  EXPECT_EQ(ServiceError(x), "service weighted_waypoints[0]: no destination");
}

TEST(DecodeAddressTest, BytesThatAreNoAddressAreRefused) {
  EXPECT_EQ(DecodeAddress("\xff\xff\xff").status().message(), "not an istio.workload.Address");
  EXPECT_EQ(DecodeAddress("").status().message(),
            "unknown address type (neither workload nor service)");
}

class AddressHandlerTest : public ::testing::Test {
 protected:
  static ResourceUpdate Update(std::string name, std::string value) {
    return ResourceUpdate{std::move(name), "v1", kAddressType, std::move(value)};
  }
  runtime::WorkloadDirectory dir_;
  AddressHandler handler_{&dir_};
};

TEST_F(AddressHandlerTest, WorkloadsAndServicesLandInTheDirectoryAndEndpointsJoin) {
  wl::Workload a = PodA();
  wl::PortList pl;
  (*a.mutable_services())["ns1/svc.ns1.svc.cluster.local"] = pl;
  std::vector<Rejection> r = handler_.Apply(
      {Update(a.uid(), Bytes(a)), Update("ns1/svc.ns1.svc.cluster.local", Bytes(SvcA()))}, {});
  EXPECT_TRUE(r.empty());
  ASSERT_TRUE(dir_.ByUid("Kubernetes//Pod/ns1/a").has_value());
  EXPECT_EQ(dir_.ByAddress("198.18.0.10")->name, "a");
  auto s = dir_.ServiceByHostname("ns1", "svc.ns1.svc.cluster.local");
  ASSERT_TRUE(s.has_value());
  runtime::WorkloadDirectory::View v = dir_.Read();
  const runtime::Service* by_vip =
      v.ServiceByVip(*runtime::ParseNetworkAddress("198.19.0.1"), "ns1");
  ASSERT_NE(by_vip, nullptr);
  ASSERT_EQ(v.Endpoints(*by_vip).size(), 1u);
  EXPECT_EQ(v.Endpoints(*by_vip)[0]->uid, "Kubernetes//Pod/ns1/a");
}

TEST_F(AddressHandlerTest, BadResourcesAreRejectedByNameAndChangeNothingTheGoodOnesApply) {
  ASSERT_TRUE(handler_.Apply({Update(PodA().uid(), Bytes(PodA()))}, {}).empty());
  wl::Workload a2 = PodA();  // same uid, a bad address: the old record must stay
  a2.set_addresses(0, "xx");
  wl::Workload b = PodA();
  b.set_uid("Kubernetes//Pod/ns1/b");
  b.set_name("b");
  b.set_addresses(0, V4(198, 18, 0, 11));
  wl::Workload thief = PodA();  // another uid claiming a's address: the directory refuses
  thief.set_uid("Kubernetes//Pod/ns1/c");
  thief.set_name("c");
  wl::Workload bad_sa = PodA();
  bad_sa.set_uid("Kubernetes//Pod/ns1/d");
  bad_sa.set_addresses(0, V4(198, 18, 0, 12));
  bad_sa.set_service_account("bad sa");
  std::vector<Rejection> r = handler_.Apply(
      {Update(a2.uid(), Bytes(a2)), Update(b.uid(), Bytes(b)), Update(thief.uid(), Bytes(thief)),
       Update(bad_sa.uid(), Bytes(bad_sa)), Update("wrong-name", Bytes(PodA())),
       Update("ns1/other", Bytes(SvcA())), Update("junk", "\x0a\x05zz")},
      {});
  ASSERT_EQ(r.size(), 6u);
  EXPECT_EQ(r[0].first, a2.uid());
  EXPECT_EQ(r[0].second, "workload addresses[0]: 2 bytes, want 4 (IPv4) or 16 (IPv6)");
  EXPECT_EQ(r[1].first, thief.uid());
  EXPECT_NE(r[1].second.find("198.18.0.10"), std::string::npos) << r[1].second;
  EXPECT_EQ(r[2].first, bad_sa.uid());
  EXPECT_FALSE(r[2].second.empty());
  EXPECT_EQ(r[3], Rejection("wrong-name",
                            "resource name must be the workload uid \"Kubernetes//Pod/ns1/a\""));
  EXPECT_EQ(r[4], Rejection("ns1/other",
                            "resource name must be the service's "
                            "\"namespace/hostname\" \"ns1/svc.ns1.svc.cluster.local\""));
  EXPECT_EQ(r[5].first, "junk");
  EXPECT_EQ(dir_.size(), 2u);
  EXPECT_EQ(dir_.ByUid(PodA().uid())->addresses, std::vector<std::string>{"198.18.0.10"});
  EXPECT_EQ(dir_.ByAddress("198.18.0.10")->uid, PodA().uid());
  EXPECT_TRUE(dir_.ByUid(b.uid()).has_value());
  EXPECT_EQ(dir_.service_count(), 0u);
}

TEST_F(AddressHandlerTest, RemovalsForgetWorkloadsByUidAndServicesByNamespaceHostname) {
  wl::Service other = SvcA();
  other.set_namespace_("ns2");
  other.set_hostname("svc.ns2");
  ASSERT_TRUE(handler_
                  .Apply({Update(PodA().uid(), Bytes(PodA())),
                          Update("ns1/svc.ns1.svc.cluster.local", Bytes(SvcA())),
                          Update("ns2/svc.ns2", Bytes(other))},
                         {})
                  .empty());
  std::vector<Rejection> r = handler_.Apply(
      {}, {PodA().uid(), "ns1/svc.ns1.svc.cluster.local", "unknown", "ns9/none", "a/b/c"});
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(dir_.size(), 0u);
  EXPECT_EQ(dir_.service_count(), 1u);
  EXPECT_TRUE(dir_.ServiceByHostname("ns2", "svc.ns2").has_value());
}

}  // namespace
}  // namespace ambient::xds
