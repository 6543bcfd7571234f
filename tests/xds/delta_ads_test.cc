// xds::DeltaAdsSession with serialized messages only: what goes up on a new
// stream, ACK and NACK, removals, and what a reconnect resends.
#include "ambient/xds/delta_ads.h"

#include <map>
#include <string>
#include <vector>

#include "discovery.pb.h"
#include "gtest/gtest.h"
#include "xds/recorder.h"

namespace ambient::xds {
namespace {

namespace wire = ::ambient::wire::envoy::discovery;

using testing::Recorder;

wire::DeltaDiscoveryRequest Decode(const std::string& bytes) {
  wire::DeltaDiscoveryRequest r;
  EXPECT_TRUE(r.ParseFromString(bytes));
  return r;
}

class DeltaAdsTest : public ::testing::Test {
 protected:
  DeltaAdsTest()
      : session_(Node(), {{kAddressType, &addresses_}, {kAuthorizationType, &policies_}}) {}
  static NodeIdentity Node() {
    NodeIdentity n;
    n.pod_name = "ztunnel-abcde";
    n.pod_namespace = "istio-system";
    n.instance_ip = "10.0.0.7";
    n.node_name = "node-1";
    n.metadata = {{"CLUSTER_ID", "Kubernetes"}};
    return n;
  }
  std::string Response(const std::string& type, const std::string& nonce,
                       std::vector<std::pair<std::string, std::string>> resources,
                       std::vector<std::string> removed = {}, const std::string& any_type = "") {
    wire::DeltaDiscoveryResponse r;
    r.set_type_url(type);
    r.set_nonce(nonce);
    for (auto& [name, version] : resources) {
      wire::Resource* res = r.add_resources();
      res->set_name(name);
      res->set_version(version);
      res->mutable_resource()->set_type_url(any_type.empty() ? type : any_type);
      res->mutable_resource()->set_value("bytes of " + name);
    }
    for (auto& n : removed) r.add_removed_resources(n);
    return r.SerializeAsString();
  }

  Recorder addresses_, policies_;
  DeltaAdsSession session_;
};

TEST_F(DeltaAdsTest, InitialRequestsCarryTheNodeAndAWildcardSubscriptionPerType) {
  std::vector<std::string> reqs = session_.StreamStarted();
  ASSERT_EQ(reqs.size(), 2u);
  wire::DeltaDiscoveryRequest a = Decode(reqs[0]);
  EXPECT_EQ(a.type_url(), kAddressType);
  EXPECT_EQ(a.node().id(),
            "ztunnel~10.0.0.7~ztunnel-abcde.istio-system~istio-system.svc.cluster.local");
  const auto& md = a.node().metadata().fields();
  EXPECT_EQ(md.at("NAME").string_value(), "ztunnel-abcde");
  EXPECT_EQ(md.at("NAMESPACE").string_value(), "istio-system");
  EXPECT_EQ(md.at("INSTANCE_IPS").string_value(), "10.0.0.7");
  EXPECT_EQ(md.at("NODE_NAME").string_value(), "node-1");
  EXPECT_EQ(md.at("CLUSTER_ID").string_value(), "Kubernetes");
  EXPECT_EQ(a.resource_names_subscribe_size(), 0);  // wildcard: empty, not "*"
  EXPECT_EQ(a.resource_names_unsubscribe_size(), 0);
  EXPECT_TRUE(a.response_nonce().empty());
  EXPECT_TRUE(a.initial_resource_versions().empty());
  EXPECT_EQ(Decode(reqs[1]).type_url(), kAuthorizationType);
  EXPECT_TRUE(Decode(reqs[1]).has_node());
  EXPECT_FALSE(session_.Ready());
}

TEST_F(DeltaAdsTest, GoodResponsesAreAppliedAndAckedAndMakeTheSessionReady) {
  session_.StreamStarted();
  absl::StatusOr<std::string> ack =
      session_.OnResponse(Response(kAddressType, "n1", {{"pod-a", "v1"}, {"pod-b", "v1"}}));
  ASSERT_TRUE(ack.ok()) << ack.status();
  wire::DeltaDiscoveryRequest r = Decode(*ack);
  EXPECT_EQ(r.type_url(), kAddressType);
  EXPECT_EQ(r.response_nonce(), "n1");
  EXPECT_FALSE(r.has_error_detail());
  EXPECT_FALSE(r.has_node());  // only the first request per type names the node
  EXPECT_EQ(addresses_.held.size(), 2u);
  EXPECT_EQ(addresses_.held["pod-a"], "bytes of pod-a");
  EXPECT_TRUE(session_.Acked(kAddressType));
  EXPECT_FALSE(session_.Ready());
  ASSERT_TRUE(session_.OnResponse(Response(kAuthorizationType, "p1", {})).ok());
  EXPECT_TRUE(session_.Ready());
  EXPECT_EQ(session_.stats().acks, 2u);
}

TEST_F(DeltaAdsTest, RejectedResourcesAreNackedByNameAndTheRestApplied) {
  session_.StreamStarted();
  addresses_.refuse["pod-bad"] = "workload without an address";
  absl::StatusOr<std::string> nack = session_.OnResponse(Response(
      kAddressType, "n2", {{"pod-a", "v1"}, {"pod-bad", "v1"}, {"pod-a", "v2"}, {"", "v1"}}));
  ASSERT_TRUE(nack.ok()) << nack.status();
  wire::DeltaDiscoveryRequest r = Decode(*nack);
  EXPECT_EQ(r.response_nonce(), "n2");
  ASSERT_TRUE(r.has_error_detail());
  EXPECT_EQ(r.error_detail().message(),
            "pod-a: named twice in one response; (unnamed): resource without a name; "
            "pod-bad: workload without an address");
  EXPECT_EQ(addresses_.held.count("pod-a"), 1u);  // the good one is applied
  // Rejected resources are not held: a reconnect asks for them again.
  EXPECT_EQ(session_.Known(kAddressType).count("pod-bad"), 0u);
  EXPECT_FALSE(session_.Acked(kAddressType));
  // A resource whose Any carries another type is rejected too.
  nack = session_.OnResponse(
      Response(kAddressType, "n3", {{"pod-c", "v1"}}, {}, "type.googleapis.com/something.Else"));
  ASSERT_TRUE(nack.ok());
  EXPECT_NE(Decode(*nack).error_detail().message().find("pod-c: carries type"), std::string::npos);
  EXPECT_EQ(addresses_.held.count("pod-c"), 0u);
}

TEST_F(DeltaAdsTest, RemovalsAreAppliedAndForgotten) {
  session_.StreamStarted();
  ASSERT_TRUE(session_.OnResponse(Response(kAddressType, "n1", {{"a", "1"}, {"b", "1"}})).ok());
  ASSERT_TRUE(session_.OnResponse(Response(kAddressType, "n2", {}, {"a", "never-held"})).ok());
  EXPECT_EQ(addresses_.removals, (std::vector<std::string>{"a", "never-held"}));
  EXPECT_EQ(addresses_.held.count("a"), 0u);
  EXPECT_EQ(session_.Known(kAddressType), (std::map<std::string, std::string>{{"b", "1"}}));
}

TEST_F(DeltaAdsTest, AReconnectSendsTheHeldVersionsAndWaitsForNewAcks) {
  session_.StreamStarted();
  ASSERT_TRUE(session_.OnResponse(Response(kAddressType, "n1", {{"a", "1"}, {"b", "7"}})).ok());
  ASSERT_TRUE(session_.OnResponse(Response(kAuthorizationType, "p1", {{"ns/deny", "3"}})).ok());
  EXPECT_TRUE(session_.Ready());
  std::vector<std::string> reqs = session_.StreamStarted();
  EXPECT_FALSE(session_.Ready());
  ASSERT_EQ(reqs.size(), 2u);
  wire::DeltaDiscoveryRequest a = Decode(reqs[0]);
  EXPECT_EQ(a.initial_resource_versions().size(), 2u);
  EXPECT_EQ(a.initial_resource_versions().at("a"), "1");
  EXPECT_EQ(a.initial_resource_versions().at("b"), "7");
  EXPECT_EQ(Decode(reqs[1]).initial_resource_versions().at("ns/deny"), "3");
}

TEST_F(DeltaAdsTest, UndecodableOrUnsubscribedResponsesChangeNothing) {
  session_.StreamStarted();
  EXPECT_EQ(session_.OnResponse("\xff\xff\xff").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(session_.OnResponse(Response("type.googleapis.com/envoy.Cluster", "x", {{"c", "1"}}))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(addresses_.calls + policies_.calls, 0);
  EXPECT_EQ(session_.stats().responses, 0u);
}

}  // namespace
}  // namespace ambient::xds
