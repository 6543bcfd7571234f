// DeltaAdsSession over grpc::Channel against a fake istiod on python3-grpcio
// (tests/xds/fake_istiod.py): what istiod sees of our node, subscription,
// ACKs, NACKs and reconnects. The test is the host (socket + poll).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ambient/grpc/channel.h"
#include "ambient/xds/address_handler.h"
#include "ambient/xds/authorization_handler.h"
#include "ambient/xds/delta_ads.h"
#include "gtest/gtest.h"
#include "support/process.h"
#include "xds/recorder.h"

namespace ambient::xds {
namespace {

using json = nlohmann::json;

using testing::Recorder;

class AdsInteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/ambient-xds-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    std::string protoc =
        absl::StrCat("protoc --python_out=", dir_, " -I ", AMBIENT_SOURCE_DIR, "/lib/xds -I ",
                     AMBIENT_SOURCE_DIR, "/lib/authz -I /usr/include ", AMBIENT_SOURCE_DIR,
                     "/lib/xds/discovery.proto ", AMBIENT_SOURCE_DIR, "/lib/xds/workload.proto ",
                     AMBIENT_SOURCE_DIR, "/lib/authz/authorization.proto");
    ASSERT_EQ(std::system(protoc.c_str()), 0) << protoc;
    istiod_ = test_support::Child::Spawn(
        {"/usr/bin/python3", AMBIENT_SOURCE_DIR "/tests/xds/fake_istiod.py", dir_});
    std::string line = test_support::ReadLine(istiod_.out(), 20000);
    ASSERT_TRUE(absl::SimpleAtoi(line, &port_)) << line << test_support::Drain(istiod_.err(), 500);
    NodeIdentity node;
    node.pod_name = "ztunnel-x";
    node.pod_namespace = "istio-system";
    node.instance_ip = "198.18.0.5";
    node.node_name = "node-1";
    auto [addresses, policies] = Handlers();
    session_ = std::make_unique<DeltaAdsSession>(
        node, std::vector<std::pair<std::string, TypeHandler*>>{{kAddressType, addresses},
                                                                {kAuthorizationType, policies}});
    ASSERT_NO_FATAL_FAILURE(Connect());
  }
  // Handlers are the Address and Authorization handlers the session feeds.
  virtual std::pair<TypeHandler*, TypeHandler*> Handlers() { return {&addresses_, &policies_}; }
  void TearDown() override {
    if (fd_ >= 0) close(fd_);
    std::system(absl::StrCat("rm -rf ", dir_).c_str());
  }

  // Connect opens a connection and the ADS stream, sending the initial requests.
  void Connect() {
    if (fd_ >= 0) close(fd_);
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    grpc::ChannelOptions o;
    o.authority = "istiod.istio-system.svc:15012";
    o.scheme = "http";
    o.metadata = {{"authorization", "Bearer tok"}, {"clusterid", "Kubernetes"}};
    auto ch = grpc::Channel::New(o, absl::Now());
    ASSERT_TRUE(ch.ok());
    ch_ = std::move(*ch);
    StartStream();
  }
  void StartStream() {
    absl::StatusOr<grpc::CallId> call =
        ch_->StartCall(kAdsMethod, absl::InfiniteFuture(), {}, absl::Now());
    ASSERT_TRUE(call.ok()) << call.status();
    call_ = *call;
    stream_closed_ = false;
    for (const std::string& req : session_->StreamStarted()) {
      ASSERT_TRUE(ch_->SendMessage(call_, req, absl::Now()).ok());
    }
  }

  // Pump moves bytes and events once (up to `ms`); true if istiod printed a line.
  bool Pump(int ms) {
    absl::string_view out = ch_->PendingOutput();
    while (!out.empty()) {
      ssize_t n = send(fd_, out.data(), out.size(), MSG_NOSIGNAL);
      if (n <= 0) break;
      ch_->ConsumeOutput(static_cast<size_t>(n));
      out = ch_->PendingOutput();
    }
    pollfd p[2] = {{fd_, POLLIN, 0}, {istiod_.out(), POLLIN, 0}};
    poll(p, 2, ms);
    if (p[0].revents != 0) {
      char buf[65536];
      ssize_t n = read(fd_, buf, sizeof(buf));
      if (n > 0) (void)ch_->Receive(absl::string_view(buf, static_cast<size_t>(n)), absl::Now());
      if (n == 0) ch_->ReceiveEof(absl::Now());
    }
    grpc::CallEvent e;
    while (ch_->PollEvent(&e)) {
      if (e.call != call_) continue;
      if (e.kind == grpc::CallEvent::Kind::kMessage) {
        absl::StatusOr<std::string> reply = session_->OnResponse(e.message);
        EXPECT_TRUE(reply.ok()) << reply.status();
        if (reply.ok()) {
          EXPECT_TRUE(ch_->SendMessage(call_, *reply, absl::Now()).ok());
        }
      } else if (e.kind == grpc::CallEvent::Kind::kClosed) {
        stream_closed_ = true;
        stream_status_ = e.status;
      }
    }
    return p[1].revents != 0;
  }
  // NextRequest drives until istiod reports a request it received.
  json NextRequest() {
    absl::Time end = absl::Now() + absl::Seconds(10);
    while (absl::Now() < end) {
      if (Pump(20)) {
        std::string line = test_support::ReadLine(istiod_.out(), 2000);
        return json::parse(line);
      }
    }
    ADD_FAILURE() << "istiod saw no request";
    return json();
  }
  void Command(const json& cmd) {
    std::string line = cmd.dump() + "\n";
    ASSERT_EQ(write(istiod_.in(), line.data(), line.size()), static_cast<ssize_t>(line.size()));
  }
  void Push(const std::string& type, const std::string& nonce,
            std::vector<std::pair<std::string, std::string>> resources,
            std::vector<std::string> removed = {}) {
    json res = json::array();
    for (auto& [name, value] : resources) {
      res.push_back({name, "v-" + nonce, type, absl::BytesToHexString(value)});
    }
    Command(
        {{"push", {{"type", type}, {"nonce", nonce}, {"resources", res}, {"removed", removed}}}});
  }

  // PushMessages has istiod build each resource from its JSON form.
  void PushMessages(const std::string& type, const std::string& nonce, const std::string& message,
                    std::vector<std::pair<std::string, json>> resources,
                    std::vector<std::string> removed = {}) {
    json res = json::array();
    for (auto& [name, body] : resources) res.push_back({name, "v-" + nonce, message, body});
    Command({{"push_messages",
              {{"type", type},
               {"nonce", nonce},
               {"any_type", type},
               {"resources", res},
               {"removed", removed}}}});
  }

  std::string dir_;
  test_support::Child istiod_;
  int port_ = 0;
  int fd_ = -1;
  Recorder addresses_, policies_;
  std::unique_ptr<DeltaAdsSession> session_;
  std::unique_ptr<grpc::Channel> ch_;
  grpc::CallId call_ = 0;
  bool stream_closed_ = false;
  absl::Status stream_status_;
};

TEST_F(AdsInteropTest, IstiodSeesZtunnelsNodeSubscriptionsAcksAndNacks) {
  json first = NextRequest();
  EXPECT_EQ(first["type"], kAddressType);
  EXPECT_EQ(first["node"],
            "ztunnel~198.18.0.5~ztunnel-x.istio-system~istio-system.svc.cluster.local");
  EXPECT_EQ(first["metadata"]["NAME"], "ztunnel-x");
  EXPECT_EQ(first["metadata"]["NODE_NAME"], "node-1");
  EXPECT_EQ(first["subscribe"], json::array());
  EXPECT_EQ(first["auth"], "Bearer tok");
  json second = NextRequest();
  EXPECT_EQ(second["type"], kAuthorizationType);

  Push(kAddressType, "a1", {{"pod-a", "A"}, {"pod-b", "B"}});
  json ack = NextRequest();
  EXPECT_EQ(ack["type"], kAddressType);
  EXPECT_EQ(ack["nonce"], "a1");
  EXPECT_TRUE(ack["error"].is_null());
  EXPECT_TRUE(ack["node"].is_null());
  EXPECT_EQ(addresses_.held, (std::map<std::string, std::string>{{"pod-a", "A"}, {"pod-b", "B"}}));
  EXPECT_FALSE(session_->Ready());
  Push(kAuthorizationType, "p1", {{"ns/allow", "P"}});
  EXPECT_EQ(NextRequest()["nonce"], "p1");
  EXPECT_TRUE(session_->Ready());

  Push(kAddressType, "a2", {{"pod-c", "bad"}, {"pod-d", "D"}}, {"pod-a"});
  json nack = NextRequest();
  EXPECT_EQ(nack["nonce"], "a2");
  EXPECT_EQ(nack["error"], "pod-c: cannot decode");
  EXPECT_EQ(addresses_.held, (std::map<std::string, std::string>{{"pod-b", "B"}, {"pod-d", "D"}}));
}

TEST_F(AdsInteropTest, AReconnectResendsTheHeldVersions) {
  NextRequest();
  NextRequest();
  Push(kAddressType, "a1", {{"pod-a", "A"}, {"pod-b", "B"}});
  NextRequest();
  Push(kAuthorizationType, "p1", {{"ns/deny", "D"}});
  NextRequest();
  ASSERT_TRUE(session_->Ready());
  Command({{"end", true}});  // istiod ends the stream
  absl::Time end = absl::Now() + absl::Seconds(10);
  while (!stream_closed_ && absl::Now() < end) Pump(20);
  ASSERT_TRUE(stream_closed_);
  EXPECT_TRUE(stream_status_.ok()) << stream_status_;
  ASSERT_NO_FATAL_FAILURE(StartStream());  // same connection, new stream
  EXPECT_FALSE(session_->Ready());
  json a = NextRequest();
  EXPECT_EQ(a["type"], kAddressType);
  EXPECT_EQ(a["initial"], (json{{"pod-a", "v-a1"}, {"pod-b", "v-a1"}}));
  EXPECT_FALSE(a["node"].is_null());
  json p = NextRequest();
  EXPECT_EQ(p["initial"], (json{{"ns/deny", "v-p1"}}));
}

// The same session with the real handlers: istiod serves Address and
// Authorization messages built by python3-protobuf from the library's .proto
// files, and they end up in the workload directory and the policy store.
class AdsInteropDirectoryTest : public AdsInteropTest {
 protected:
  std::pair<TypeHandler*, TypeHandler*> Handlers() override { return {&to_dir_, &to_store_}; }
  static std::string B64(std::initializer_list<uint8_t> bytes) {
    return absl::Base64Escape(std::string(bytes.begin(), bytes.end()));
  }
  runtime::WorkloadDirectory directory_;
  authz::PolicyStore store_;
  AddressHandler to_dir_{&directory_};
  AuthorizationHandler to_store_{&store_};
};

TEST_F(AdsInteropDirectoryTest, AddressesAndPoliciesFromIstiodFillTheDirectoryAndTheStore) {
  NextRequest();
  NextRequest();
  json pod_a = {{"workload",
                 {{"uid", "Kubernetes//Pod/ns1/a"},
                  {"name", "a"},
                  {"namespace", "ns1"},
                  {"addresses", {B64({198, 18, 0, 10})}},
                  {"tunnelProtocol", "HBONE"},
                  {"serviceAccount", "sa-a"},
                  {"node", "node-1"},
                  {"services", {{"ns1/svc.ns1.svc.cluster.local", {{"ports", json::array()}}}}},
                  {"authorizationPolicies", {"ns1/deny-b"}},
                  {"capacity", 3},
                  {"waypoint",
                   {{"hostname", {{"namespace", "ns1"}, {"hostname", "wp.ns1.svc.cluster.local"}}},
                    {"hboneMtlsPort", 15008}}}}}};
  json svc = {{"service",
               {{"name", "svc"},
                {"namespace", "ns1"},
                {"hostname", "svc.ns1.svc.cluster.local"},
                {"addresses", {{{"address", B64({198, 19, 0, 1})}}}},
                {"ports", {{{"servicePort", 80}, {"targetPort", 8080}}}},
                {"loadBalancing", {{"routingPreference", {"NETWORK"}}, {"mode", "STRICT"}}}}}};
  json bad = {{"workload",
               {{"uid", "Kubernetes//Pod/ns1/bad"},
                {"name", "bad"},
                {"namespace", "ns1"},
                {"addresses", {B64({1, 2, 3, 4, 5})}}}}};
  PushMessages(kAddressType, "a1", "workload.Address",
               {{"Kubernetes//Pod/ns1/a", pod_a},
                {"ns1/svc.ns1.svc.cluster.local", svc},
                {"Kubernetes//Pod/ns1/bad", bad}});
  json nack = NextRequest();
  EXPECT_EQ(nack["nonce"], "a1");
  EXPECT_EQ(nack["error"],
            "Kubernetes//Pod/ns1/bad: workload addresses[0]: 5 bytes, want 4 (IPv4) or 16 (IPv6)");
  std::optional<runtime::Workload> a = directory_.ByAddress("198.18.0.10");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->uid, "Kubernetes//Pod/ns1/a");
  EXPECT_EQ(a->Identity()->str(), "spiffe://cluster.local/ns/ns1/sa/sa-a");
  EXPECT_EQ(a->capacity, 3u);
  EXPECT_EQ(a->node, "node-1");
  ASSERT_TRUE(a->waypoint.has_value());
  EXPECT_EQ(a->waypoint->ToString(), "ns1/wp.ns1.svc.cluster.local");
  std::optional<runtime::Service> s =
      directory_.ServiceByHostname("ns1", "svc.ns1.svc.cluster.local");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->ports, (std::map<uint16_t, uint16_t>{{80, 8080}}));
  ASSERT_TRUE(s->load_balancing.has_value());
  EXPECT_EQ(s->load_balancing->mode, runtime::LoadBalancing::Mode::kStrict);
  {
    runtime::WorkloadDirectory::View v = directory_.Read();
    const runtime::Service* by_vip =
        v.ServiceByVip(*runtime::ParseNetworkAddress("198.19.0.1"), "ns1");
    ASSERT_NE(by_vip, nullptr);
    EXPECT_EQ(v.Endpoints(*by_vip).size(), 1u);
  }
  EXPECT_EQ(directory_.size(), 1u);

  json deny = {
      {"name", "deny-b"},
      {"namespace", "ns1"},
      {"scope", "WORKLOAD_SELECTOR"},
      {"action", "DENY"},
      {"rules",
       {{{"clauses",
          {{{"matches", {{{"principals", {{{"exact", "cluster.local/ns/ns1/sa/b"}}}}}}}}}}}}}};
  PushMessages(kAuthorizationType, "p1", "authorization.Authorization", {{"ns1/deny-b", deny}});
  json ack = NextRequest();
  EXPECT_EQ(ack["nonce"], "p1");
  EXPECT_TRUE(ack["error"].is_null()) << ack;
  authz::Connection c;
  c.src_ip = *IpAddress::Parse("198.18.0.11");
  c.dst_ip = *IpAddress::Parse("198.18.0.10");
  c.dst_port = 8080;
  c.src_identity = *identity::IstioIdentity::Parse("spiffe://cluster.local/ns/ns1/sa/b");
  authz::Decision d = store_.Check({a->ns, a->policies}, c);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.policy, "ns1/deny-b");

  PushMessages(kAddressType, "a2", "workload.Address", {}, {"Kubernetes//Pod/ns1/a"});
  EXPECT_TRUE(NextRequest()["error"].is_null());
  EXPECT_FALSE(directory_.ByAddress("198.18.0.10").has_value());
  PushMessages(kAuthorizationType, "p2", "authorization.Authorization", {}, {"ns1/deny-b"});
  EXPECT_TRUE(NextRequest()["error"].is_null());
  EXPECT_EQ(store_.size(), 0u);
}

}  // namespace
}  // namespace ambient::xds
