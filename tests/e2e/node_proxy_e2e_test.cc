// End to end, as in DESIGN.md's main job: two pods in their own network
// namespaces behind a node netns, istio-cni's in-pod rules installed in
// both, a ZDS node agent handing the pods' netns to the node proxy, and a
// plain TCP client in pod A talking to a server in pod B. Everything runs in
// this process (agent, proxy, client and server threads) so the test also
// runs under ASan; the sockets live in the test's own namespaces.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ambient/authz/policy_codec.h"
#include "ambient/hbone/tls_context.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/trust_bundle.h"
#include "ambient/netns/netns.h"
#include "ambient/netns/zds.h"
#include "ambient/redirect/apply.h"
#include "ambient/redirect/config.h"
#include "ambient/runtime/hbone_proxy.h"
#include "ambient/runtime/node_proxy.h"
#include "e2e/pod_apps.h"
#include "e2e/topology.h"
#include "gtest/gtest.h"
#include "hbone/test_pki.h"
#include "support/privileged.h"
#ifdef AMBIENT_WAYPOINT_BIN
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "absl/strings/str_split.h"
#include "ambient/base/tls.h"
#include "node_config.h"
#include "support/spiffe_ids.h"
#endif

namespace ambient::e2e {
namespace {

using netns::Netns;

// In returns a SocketMaker for TCP sockets inside `ns`.
SocketMaker In(const Netns& ns) {
  return [&ns](int family) {
    absl::StatusOr<netns::UniqueFd> fd = netns::SocketIn(ns, family, SOCK_STREAM, 0);
    return fd.ok() ? fd->release() : -1;
  };
}

constexpr char kClientId[] = "spiffe://cluster.local/ns/demo/sa/client";
constexpr char kServerId[] = "spiffe://cluster.local/ns/demo/sa/server";
constexpr int kAppPort = 9080;

// Lines collects log lines from any thread.
class Lines {
 public:
  LogSink Sink() {
    return [this](LogLevel level, absl::string_view component, absl::string_view message) {
      const char* names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
      std::lock_guard<std::mutex> lock(mu_);
      lines_.push_back(absl::StrCat(names[static_cast<int>(level)], " ", component, " ", message));
    };
  }
  std::vector<std::string> Matching(const std::vector<std::string>& parts) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const std::string& l : lines_) {
      bool all = true;
      for (const std::string& p : parts) all = all && absl::StrContains(l, p);
      if (all) out.push_back(l);
    }
    return out;
  }
  // WaitFor waits up to 10 s for a line containing all `parts`.
  std::string WaitFor(const std::vector<std::string>& parts) const {
    for (int i = 0; i < 1000; ++i) {
      std::vector<std::string> m = Matching(parts);
      if (!m.empty()) return m.front();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return "";
  }
  std::string All() const {
    std::lock_guard<std::mutex> lock(mu_);
    return absl::StrJoin(lines_, "\n");
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

std::shared_ptr<identity::CredentialHolder> Holder(const hbone::testing::TestCa& ca,
                                                   const std::string& id) {
  hbone::testing::KeyAndCert kc = ca.Leaf(id);
  absl::StatusOr<std::shared_ptr<const identity::Credentials>> c = identity::Credentials::FromPem(
      hbone::testing::TestCa::CertPem(kc), hbone::testing::TestCa::KeyPem(kc));
  if (!c.ok()) return nullptr;
  return std::make_shared<identity::CredentialHolder>(*c);
}

// Every temporary directory a test made; when the process ends, none of them
// may be left in /tmp (each test's TearDown removes its own).
std::vector<std::string>& MadeDirs() {
  static std::vector<std::string> dirs;
  return dirs;
}
class NoDirLeftBehind : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const std::string& d : MadeDirs()) {
      EXPECT_FALSE(std::filesystem::exists(d)) << d << " was left behind";
    }
  }
};
const ::testing::Environment* const kNoDirLeftBehind =
    ::testing::AddGlobalTestEnvironment(new NoDirLeftBehind);

class NodeProxyE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AMBIENT_REQUIRE_ROOT();
    ASSERT_TRUE(topo_.ok()) << "could not build the namespaces";
    rules_.ipv6 = true;          // dual-stack pods: the IPv6 rules and policy routing too
    rules_.dns_capture = false;  // the node proxy serves no DNS (15053)
    absl::StatusOr<Netns> a = Netns::OpenByName(topo_.a());
    absl::StatusOr<Netns> b = Netns::OpenByName(topo_.b());
    absl::StatusOr<Netns> node = Netns::OpenByName(topo_.node());
    ASSERT_TRUE(a.ok() && b.ok() && node.ok());
    a_ = std::move(*a);
    b_ = std::move(*b);
    node_ = std::move(*node);
    // The node agent's first job: istio-cni's in-pod rules in both pods.
    for (const Netns* ns : {&a_, &b_}) {
      absl::Status st = redirect::Apply(rules_, *ns);
      ASSERT_TRUE(st.ok()) << st;
    }
    char dir[] = "/tmp/ambient-e2e-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    MadeDirs().push_back(dir_);
  }

  // Start runs the node proxy (optionally with `policy_json`), its ZDS end
  // and the node agent, and hands both pods over. `mesh`, when given, edits
  // the two pods' workloads and adds to the directory (services, more
  // workloads) before the proxy starts.
  using MeshEdit = std::function<void(runtime::WorkloadDirectory* dir, runtime::Workload* a,
                                      runtime::Workload* b)>;
  void Start(const std::string& policy_json = "", const MeshEdit& mesh = nullptr) {
    auto directory = std::make_shared<runtime::WorkloadDirectory>();
    runtime::Workload wa;
    wa.uid = "pod-a";
    wa.name = "client";
    wa.ns = "demo";
    wa.service_account = "client";
    wa.addresses = {kPodA, kPodA6};
    runtime::Workload wb = wa;
    wb.uid = "pod-b";
    wb.name = "server";
    wb.service_account = "server";
    wb.addresses = {kPodB, kPodB6};
    if (mesh) mesh(directory.get(), &wa, &wb);
    ASSERT_TRUE(directory->Upsert(wa).ok());
    ASSERT_TRUE(directory->Upsert(wb).ok());
    directory_ = directory;

    auto td = identity::TrustDomain::Parse("cluster.local");
    ASSERT_TRUE(td.ok());
    auto bundle = identity::TrustBundle::FromPem(*td, ca_.CaPem());
    ASSERT_TRUE(bundle.ok());
    auto set = identity::TrustBundleSet::Create({*bundle});
    ASSERT_TRUE(set.ok());
    holders_[kClientId] = Holder(ca_, kClientId);
    holders_[kServerId] = Holder(ca_, kServerId);

    runtime::NodeProxyOptions o;
    o.workloads = directory;
    o.bundles = std::make_shared<identity::TrustBundleSource>(*set);
    o.credentials = [this](const runtime::Workload& w)
        -> absl::StatusOr<std::shared_ptr<identity::CredentialHolder>> {
      auto it = holders_.find(w.Identity()->str());
      if (it == holders_.end()) return absl::NotFoundError("no SVID");
      return it->second;
    };
    if (!policy_json.empty()) {
      auto policies = authz::DecodePolicyListJson(policy_json);
      ASSERT_TRUE(policies.ok()) << policies.status();
      o.policies = std::make_shared<authz::PolicyStore>();
      ASSERT_TRUE(o.policies->Replace(*policies).ok());
      policies_ = o.policies;
    }
    o.log = lines_.Sink();
    o.metrics = metrics_;
    o.connect_timeout = absl::Seconds(3);
    o.limits = limits_;

    auto loop = runtime::EventLoop::New();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(*loop);
    auto proxy = runtime::NodeProxy::New(loop_.get(), std::move(o));
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = std::move(*proxy);
    loop_thread_ = std::thread([this] { loop_->Run(); });

    netns::zds::ZdsAgentOptions ao;
    ao.socket_path = dir_ + "/zds.sock";
    auto agent = netns::zds::ZdsAgent::Start(ao);
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = std::move(*agent);
    // ZDS runs on the proxy's loop: started there.
    netns::zds::ZdsProxyOptions po;
    po.socket_path = ao.socket_path;
    std::promise<absl::Status> started;
    loop_->Post([&] { started.set_value(proxy_->StartZds(po)); });
    absl::Status zds_started = started.get_future().get();
    ASSERT_TRUE(zds_started.ok()) << zds_started;
    ASSERT_TRUE(agent_->WaitForProxies(1, absl::Seconds(10)).ok());
    absl::Status st = agent_->AddWorkload("pod-a", {"client", "demo", "client"}, a_);
    ASSERT_TRUE(st.ok()) << st << "\n" << lines_.All();
    st = agent_->AddWorkload("pod-b", {"server", "demo", "server"}, b_);
    ASSERT_TRUE(st.ok()) << st << "\n" << lines_.All();
  }

  void TearDown() override {
    agent_.reset();
    if (loop_) {
      loop_->Post([this] {
        proxy_.reset();
        loop_->Stop();
      });
      if (loop_thread_.joinable()) loop_thread_.join();
      loop_->RunFor(absl::Milliseconds(10));  // deferred deletes
    }
    for (const Netns* ns : {&a_, &b_}) {
      if (ns->valid()) redirect::Delete(rules_, *ns).IgnoreError();
    }
    // The directory and what the test put there (the ZDS socket, the
    // waypoint's files), whatever the outcome.
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  size_t PodCount() {
    std::atomic<int> n{-1};
    loop_->Post([&] { n = static_cast<int>(proxy_->pods().size()); });
    for (int i = 0; i < 500 && n < 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return static_cast<size_t>(n.load());
  }

  Topology topo_;
  Netns a_, b_, node_;
  redirect::Config rules_;
  std::string dir_;
  hbone::testing::TestCa ca_;
  std::map<std::string, std::shared_ptr<identity::CredentialHolder>> holders_;
  std::shared_ptr<authz::PolicyStore> policies_;  // Start's, when it made one
  std::shared_ptr<runtime::WorkloadDirectory> directory_;  // Start's
  Lines lines_;
  runtime::NodeProxyLimits limits_;  // what Start gives the proxy
  std::shared_ptr<hbone::Metrics> metrics_ = std::make_shared<hbone::Metrics>();
  std::unique_ptr<runtime::EventLoop> loop_;
  std::unique_ptr<runtime::NodeProxy> proxy_;
  std::thread loop_thread_;
  std::unique_ptr<netns::zds::ZdsAgent> agent_;
};

TEST_F(NodeProxyE2eTest, PodToPodGoesOverHboneWithBothIdentities) {
  ASSERT_NO_FATAL_FAILURE(Start());
  AppServer app(In(b_), kPodB, kAppPort);
  ASSERT_TRUE(app.ok());

  std::string reply = Exchange(In(a_), kPodB, kAppPort, "ping from A");
  EXPECT_EQ(reply, absl::StrCat("pong from ", kPodB, ": ping from A")) << lines_.All();

  // The app saw pod A's own IP: the last hop was bound to the client's IP.
  EXPECT_EQ(app.peers(), std::vector<std::string>{kPodA});

  // Outbound (pod A side): HBONE to B:15008 with B's identity verified.
  std::string out = lines_.WaitFor({"access connection complete", "direction=\"outbound\"",
                                    absl::StrCat("dst.addr=", kPodB, ":15008")});
  ASSERT_FALSE(out.empty()) << lines_.All();
  EXPECT_TRUE(absl::StrContains(out, absl::StrCat("src.identity=\"", kClientId, "\""))) << out;
  EXPECT_TRUE(absl::StrContains(out, absl::StrCat("dst.identity=\"", kServerId, "\""))) << out;
  EXPECT_TRUE(absl::StrContains(out, absl::StrCat("dst.hbone_addr=", kPodB, ":", kAppPort))) << out;
  EXPECT_TRUE(absl::StrContains(out, "src.workload=\"client\" src.namespace=\"demo\"")) << out;
  EXPECT_TRUE(absl::StrContains(out, "dst.workload=\"server\" dst.namespace=\"demo\"")) << out;
  EXPECT_TRUE(absl::StrContains(out, "bytes_sent=11 ")) << out;  // "ping from A"
  EXPECT_FALSE(absl::StrContains(out, "error=")) << out;

  // Inbound (pod B's 15008): the client's SVID was verified.
  std::string in = lines_.WaitFor({"access connection complete", "direction=\"inbound\""});
  ASSERT_FALSE(in.empty()) << lines_.All();
  EXPECT_TRUE(absl::StrContains(in, absl::StrCat("src.identity=\"", kClientId, "\""))) << in;
  EXPECT_TRUE(absl::StrContains(in, absl::StrCat("src.addr=", kPodA, ":"))) << in;
  EXPECT_TRUE(absl::StrContains(in, absl::StrCat("dst.identity=\"", kServerId, "\""))) << in;
  EXPECT_TRUE(absl::StrContains(in, absl::StrCat("dst.hbone_addr=", kPodB, ":", kAppPort))) << in;
  EXPECT_TRUE(absl::StrContains(in, "bytes_recv=11 ")) << in;
  EXPECT_FALSE(absl::StrContains(in, "error=")) << in;
  // Both sides name both workloads, in ztunnel's field order.
  for (const std::string& line : {in, out}) {
    EXPECT_TRUE(absl::StrContains(
        line,
        absl::StrCat(" src.workload=\"client\" src.namespace=\"demo\" src.identity=\"", kClientId,
                     "\" dst.addr=", kPodB, ":15008 dst.hbone_addr=", kPodB, ":", kAppPort,
                     " dst.workload=\"server\" dst.namespace=\"demo\" "
                     "dst.identity=\"",
                     kServerId, "\" direction=")))
        << line;
  }
  // The istio_tcp_* labels carry the same workloads from both reporters.
  std::string prom = metrics_->Prometheus();
  for (const char* reporter : {"source", "destination"}) {
    EXPECT_TRUE(absl::StrContains(
        prom,
        absl::StrCat("istio_tcp_connections_opened_total{reporter=\"", reporter,
                     "\",source_workload=\"client\",source_canonical_service=\"client\","
                     "source_canonical_revision=\"latest\",source_workload_namespace=\"demo\"")))
        << prom;
  }
  EXPECT_TRUE(absl::StrContains(prom,
                                "destination_workload=\"server\",destination_canonical_service="
                                "\"server\",destination_canonical_revision=\"latest\","
                                "destination_workload_namespace=\"demo\""))
      << prom;
  EXPECT_FALSE(absl::StrContains(prom, "workload=\"unknown\"")) << prom;
}

TEST_F(NodeProxyE2eTest, PodToPodOverIpv6) {
  ASSERT_NO_FATAL_FAILURE(Start());
  AppServer app(In(b_), kPodB6, kAppPort);
  ASSERT_TRUE(app.ok());

  std::string reply = Exchange(In(a_), kPodB6, kAppPort, "ping over v6");
  EXPECT_EQ(reply, absl::StrCat("pong from ", kPodB6, ": ping over v6")) << lines_.All();
  EXPECT_EQ(app.peers(), std::vector<std::string>{kPodA6});

  std::string out = lines_.WaitFor({"access connection complete", "direction=\"outbound\"",
                                    absl::StrCat("dst.addr=[", kPodB6, "]:15008")});
  ASSERT_FALSE(out.empty()) << lines_.All();
  EXPECT_TRUE(absl::StrContains(out, absl::StrCat("dst.hbone_addr=[", kPodB6, "]:", kAppPort)))
      << out;
  EXPECT_TRUE(absl::StrContains(out, absl::StrCat("dst.identity=\"", kServerId, "\""))) << out;
  std::string in = lines_.WaitFor({"access connection complete", "direction=\"inbound\""});
  ASSERT_FALSE(in.empty()) << lines_.All();
  EXPECT_TRUE(absl::StrContains(in, absl::StrCat("src.addr=[", kPodA6, "]:"))) << in;
  EXPECT_TRUE(absl::StrContains(in, absl::StrCat("src.identity=\"", kClientId, "\""))) << in;
  EXPECT_TRUE(absl::StrContains(in, "src.workload=\"client\"")) << in;
  EXPECT_TRUE(absl::StrContains(in, "dst.workload=\"server\"")) << in;
}

TEST_F(NodeProxyE2eTest, DestinationOutsideTheMeshIsPassedThroughAsPlainTcp) {
  ASSERT_NO_FATAL_FAILURE(Start());
  // A server in the node netns: not in the workload directory.
  AppServer outside(In(node_), kNodeToA, 9090);
  ASSERT_TRUE(outside.ok());

  std::string reply = Exchange(In(a_), kNodeToA, 9090, "hello outside");
  EXPECT_EQ(reply, absl::StrCat("pong from ", kNodeToA, ": hello outside")) << lines_.All();
  EXPECT_EQ(outside.peers(), std::vector<std::string>{kPodA});

  std::string line = lines_.WaitFor({"access connection complete", "direction=\"outbound\"",
                                     absl::StrCat("dst.addr=", kNodeToA, ":9090")});
  ASSERT_FALSE(line.empty()) << lines_.All();
  EXPECT_FALSE(absl::StrContains(line, "dst.hbone_addr")) << line;
  EXPECT_FALSE(absl::StrContains(line, "identity")) << line;  // no mTLS
  EXPECT_TRUE(absl::StrContains(line, "bytes_sent=13 ")) << line;
  EXPECT_TRUE(absl::StrContains(line, " src.workload=\"client\" src.namespace=\"demo\" dst.addr="))
      << line;
  EXPECT_FALSE(absl::StrContains(line, "dst.workload")) << line;  // not in the directory
  EXPECT_TRUE(lines_.Matching({"direction=\"inbound\""}).empty()) << lines_.All();
}

TEST_F(NodeProxyE2eTest, PlaintextClientOutsideTheMeshReachesThePodThrough15006) {
  ASSERT_NO_FATAL_FAILURE(Start());
  AppServer app(In(b_), kPodB, kAppPort);
  ASSERT_TRUE(app.ok());

  std::string reply = Exchange(In(node_), kPodB, kAppPort, "plain hello");
  EXPECT_EQ(reply, absl::StrCat("pong from ", kPodB, ": plain hello")) << lines_.All();
  EXPECT_EQ(app.peers(), std::vector<std::string>{kNodeToB});

  std::string line = lines_.WaitFor({"access connection complete", "direction=\"inbound\"",
                                     absl::StrCat("src.addr=", kNodeToB, ":")});
  ASSERT_FALSE(line.empty()) << lines_.All();
  EXPECT_FALSE(absl::StrContains(line, "src.identity")) << line;
  EXPECT_FALSE(absl::StrContains(line, "src.workload")) << line;  // not in the directory
  EXPECT_TRUE(
      absl::StrContains(line, " dst.workload=\"server\" dst.namespace=\"demo\" dst.identity="))
      << line;
  EXPECT_TRUE(absl::StrContains(line, "bytes_recv=11 ")) << line;
}

// ztunnel's policy watcher: RecheckPolicies closes an open plaintext (15006)
// connection that a policy added later denies, and its line says why.
TEST_F(NodeProxyE2eTest, RecheckClosesAPlaintextConnectionThatANewPolicyDenies) {
  ASSERT_NO_FATAL_FAILURE(Start(R"({"policies": []})"));
  ASSERT_NE(policies_, nullptr);
  AppServer app(In(b_), kPodB, kAppPort);
  ASSERT_TRUE(app.ok());
  sockaddr_storage addr;
  socklen_t len = Sockaddr(kPodB, kAppPort, &addr);
  Fd fd(In(node_)(addr.ss_family));
  ASSERT_TRUE(fd.valid());
  SetTimeouts(fd.get());
  ASSERT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(write(fd.get(), "left open", 9), 9);  // no half-close: the app waits
  auto recheck = [&] {
    std::promise<size_t> closed;
    loop_->Post([&] { closed.set_value(proxy_->RecheckPolicies()); });
    return closed.get_future().get();
  };
  EXPECT_EQ(recheck(), 0u);
  auto deny = authz::DecodePolicyListJson(R"({"policies": [{
      "name": "deny-app-port", "namespace": "demo", "scope": "NAMESPACE", "action": "DENY",
      "rules": [{"clauses": [{"matches": [{"destinationPorts": [9080]}]}]}]}]})");
  ASSERT_TRUE(deny.ok()) << deny.status();
  ASSERT_TRUE(policies_->Replace(*deny).ok());
  size_t closed = 0;
  for (int i = 0; i < 250 && closed == 0; ++i) {  // until the relay is up
    closed = recheck();
    if (closed == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(closed, 1u) << lines_.All();
  char buf[64];
  EXPECT_LE(read(fd.get(), buf, sizeof(buf)), 0) << "the client's connection was not ended";
  std::string line = lines_.WaitFor({"ERROR access connection complete", "direction=\"inbound\""});
  ASSERT_FALSE(line.empty()) << lines_.All();
  EXPECT_TRUE(absl::StrContains(
      line,
      "error=\"connection closed due to policy change: explicitly denied by demo/deny-app-port\""))
      << line;
  EXPECT_EQ(recheck(), 0u);
}

// A captured pod whose workload leaves the directory (xDS removed it) while
// the node agent still has it: as in ztunnel, its peers no longer treat its
// IP as a mesh workload (plain TCP), and its own inbound side refuses.
TEST_F(NodeProxyE2eTest, CapturedPodWhoseWorkloadLeftTheDirectoryRefusesInbound) {
  ASSERT_NO_FATAL_FAILURE(Start());
  AppServer app(In(b_), kPodB, kAppPort);
  ASSERT_TRUE(app.ok());
  EXPECT_EQ(Exchange(In(a_), kPodB, kAppPort, "before"),
            absl::StrCat("pong from ", kPodB, ": before"))
      << lines_.All();
  ASSERT_TRUE(directory_->Remove("pod-b"));
  std::string reply = Exchange(In(a_), kPodB, kAppPort, "after");
  EXPECT_FALSE(absl::StrContains(reply, "pong")) << reply;
  std::string in = lines_.WaitFor({"ERROR access connection complete", "direction=\"inbound\"",
                                   "is no longer in the workload directory"});
  ASSERT_FALSE(in.empty()) << lines_.All();
  EXPECT_FALSE(absl::StrContains(in, "src.identity")) << "peers send plain TCP: " << in;
  EXPECT_EQ(PodCount(), 2u);  // still captured: the node agent did not delete it
}

TEST_F(NodeProxyE2eTest, DenyPolicyForPodAIdentityRefusesTheTunnel) {
  ASSERT_NO_FATAL_FAILURE(Start(R"({"policies": [{
      "name": "deny-client", "namespace": "demo", "scope": "NAMESPACE", "action": "DENY",
      "rules": [{"clauses": [{"matches": [
        {"principals": [{"exact": "cluster.local/ns/demo/sa/client"}]}]}]}]}]})"));
  AppServer app(In(b_), kPodB, kAppPort);
  ASSERT_TRUE(app.ok());

  std::string reply = Exchange(In(a_), kPodB, kAppPort, "ping from A");
  EXPECT_FALSE(absl::StrContains(reply, "pong")) << reply;
  EXPECT_TRUE(app.peers().empty());

  std::string in = lines_.WaitFor({"ERROR access connection complete", "direction=\"inbound\""});
  ASSERT_FALSE(in.empty()) << lines_.All();
  EXPECT_TRUE(absl::StrContains(in, "explicitly denied by demo/deny-client")) << in;
  EXPECT_TRUE(absl::StrContains(in, "src.workload=\"client\"")) << in;
  EXPECT_TRUE(absl::StrContains(in, "dst.workload=\"server\"")) << in;
  EXPECT_TRUE(absl::StrContains(in, absl::StrCat("src.identity=\"", kClientId, "\""))) << in;
  std::string out = lines_.WaitFor({"ERROR access connection complete", "direction=\"outbound\""});
  EXPECT_FALSE(out.empty()) << lines_.All();
}

TEST_F(NodeProxyE2eTest, PodUnknownToTheDirectoryIsRefusedOverZds) {
  ASSERT_NO_FATAL_FAILURE(Start());
  absl::Status st = agent_->AddWorkload("pod-x", {"mallory", "demo", "mallory"}, a_);
  EXPECT_EQ(st.code(), absl::StatusCode::kAborted) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "not in the workload directory")) << st;
  EXPECT_EQ(PodCount(), 2u);  // the captured pods are untouched
}

TEST_F(NodeProxyE2eTest, ANetnsHandedForASecondPodIsRefusedOverZds) {
  ASSERT_NO_FATAL_FAILURE(Start());
  // Same workload name (the directory finds it), another uid, pod A's netns:
  // before, both uids got listeners on the same ports via SO_REUSEPORT.
  absl::Status st = agent_->AddWorkload("pod-a-again", {"client", "demo", "client"}, a_);
  EXPECT_EQ(st.code(), absl::StatusCode::kAborted) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "is already captured for pod pod-a")) << st;
  EXPECT_EQ(PodCount(), 2u);
  // The same uid handed its own netns again is still fine (a snapshot replay).
  st = agent_->AddWorkload("pod-a", {"client", "demo", "client"}, a_);
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(PodCount(), 2u);
}

// ManyPongs serves each connection on its own thread: reads until EOF,
// answers "pong: <what it read>" (AppServer serves one at a time).
class ManyPongs {
 public:
  ManyPongs(const SocketMaker& socket, const char* ip, int port) {
    sockaddr_storage a;
    socklen_t len = Sockaddr(ip, port, &a);
    Fd fd(socket(a.ss_family));
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (len == 0 || bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        listen(fd.get(), 16) != 0) {
      return;
    }
    fd_ = std::move(fd);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        auto c = std::make_shared<Fd>(accept(fd_.get(), nullptr, nullptr));
        if (!c->valid()) continue;
        ++accepted_;
        SetTimeouts(c->get());
        workers_.emplace_back([c] {
          std::string got;
          char buf[256];
          for (ssize_t n; (n = read(c->get(), buf, sizeof(buf))) > 0;) got.append(buf, n);
          std::string reply = "pong: " + got;
          (void)!write(c->get(), reply.data(), reply.size());
        });
      }
    });
  }
  ~ManyPongs() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (std::thread& t : workers_) t.join();
  }
  bool ok() const { return fd_.valid(); }
  int accepted() const { return accepted_; }

 private:
  Fd fd_;
  std::thread thread_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
};

// Connect opens a connection from inside `ns` to ip:port and sends `text`
// (no half-close); an invalid Fd when that fails.
Fd Connect(const Netns& ns, const char* ip, int port, const std::string& text) {
  sockaddr_storage a;
  socklen_t len = Sockaddr(ip, port, &a);
  Fd fd(In(ns)(a.ss_family));
  SetTimeouts(fd.get());
  if (!fd.valid() || connect(fd.get(), reinterpret_cast<sockaddr*>(&a), len) != 0 ||
      write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return Fd();
  }
  return fd;
}

// ReadWithin returns what arrives on `fd` until EOF or `wait` passes.
std::string ReadWithin(int fd, absl::Duration wait) {
  std::string got;
  absl::Time end = absl::Now() + wait;
  for (absl::Duration left; (left = end - absl::Now()) > absl::ZeroDuration();) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
    char buf[256];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// Issue 17: the node proxy's 15001/15006 listeners accepted without limit.
// With a cap of 2 (per listener, or node-wide), a third connection from the
// pod waits in the backlog until one of the two closes, then goes through.
void ThirdConnectionWaitsForAPlace(const Netns& a, const Netns& b) {
  ManyPongs app(In(b), kPodB, kAppPort);
  ASSERT_TRUE(app.ok());
  Fd first = Connect(a, kPodB, kAppPort, "first");
  Fd second = Connect(a, kPodB, kAppPort, "second");
  ASSERT_TRUE(first.valid() && second.valid());
  for (int i = 0; i < 300 && app.accepted() < 2; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(app.accepted(), 2);
  Fd third = Connect(a, kPodB, kAppPort, "third");
  ASSERT_TRUE(third.valid());  // the kernel's backlog took it
  shutdown(third.get(), SHUT_WR);
  EXPECT_EQ(ReadWithin(third.get(), absl::Milliseconds(500)), "");
  EXPECT_EQ(app.accepted(), 2);
  // One closes: its place goes to the third.
  shutdown(first.get(), SHUT_WR);
  EXPECT_EQ(ReadWithin(first.get(), absl::Seconds(3)), "pong: first");
  first = Fd();
  EXPECT_EQ(ReadWithin(third.get(), absl::Seconds(3)), "pong: third");
  shutdown(second.get(), SHUT_WR);
  EXPECT_EQ(ReadWithin(second.get(), absl::Seconds(3)), "pong: second");
}

TEST_F(NodeProxyE2eTest, OutboundListenerCapHoldsTheThirdConnectionUntilOneCloses) {
  limits_.max_connections_per_listener = 2;
  ASSERT_NO_FATAL_FAILURE(Start());
  ThirdConnectionWaitsForAPlace(a_, b_);
}

TEST_F(NodeProxyE2eTest, NodeWideCapHoldsTheThirdConnectionUntilOneCloses) {
  limits_.max_connections = 2;
  ASSERT_NO_FATAL_FAILURE(Start());
  ThirdConnectionWaitsForAPlace(a_, b_);
}

TEST_F(NodeProxyE2eTest, DelWorkloadClosesThePodsListeners) {
  ASSERT_NO_FATAL_FAILURE(Start());
  EXPECT_EQ(PodCount(), 2u);
  // Inside pod B, the proxy's 15008 listener answers.
  EXPECT_FALSE(absl::StartsWith(Exchange(In(b_), "127.0.0.1", 15008, ""), "error: connect"));

  absl::Status st = agent_->DelWorkload("pod-b");
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(PodCount(), 1u);
  EXPECT_EQ(Exchange(In(b_), "127.0.0.1", 15008, ""), "error: connect: Connection refused");
  EXPECT_FALSE(lines_.WaitFor({"node-proxy pod pod-b (demo/server) released"}).empty())
      << lines_.All();

  // Pod A is still captured, but nothing answers HBONE in pod B any more.
  AppServer app(In(b_), kPodB, kAppPort);
  std::string reply = Exchange(In(a_), kPodB, kAppPort, "ping from A");
  EXPECT_FALSE(absl::StrContains(reply, "pong")) << reply;
  EXPECT_FALSE(
      lines_.WaitFor({"ERROR access connection complete", "direction=\"outbound\""}).empty())
      << lines_.All();
}

// Services: a VIP from the node's service range (198.19.0.0/16, 2001:db8:ff::/64),
// port 80 -> 9080, resolved by the node proxy to an endpoint's 15008.
constexpr char kVip[] = "198.19.0.10";
constexpr char kVip6[] = "2001:db8:ff::10";
constexpr char kService[] = "server.demo.svc.cluster.local";

runtime::Service ServerService(std::vector<std::string> vips) {
  runtime::Service s;
  s.name = "server";
  s.ns = "demo";
  s.hostname = kService;
  for (const std::string& v : vips) s.vips.push_back(*runtime::ParseNetworkAddress(v));
  s.ports = {{80, kAppPort}};
  return s;
}

TEST_F(NodeProxyE2eTest, ServiceVipReachesAnEndpointOverHboneV4AndV6) {
  ASSERT_NO_FATAL_FAILURE(
      Start("", [](runtime::WorkloadDirectory* dir, runtime::Workload*, runtime::Workload* b) {
        runtime::Service s = ServerService({kVip, kVip6});
        ASSERT_TRUE(dir->UpsertService(s).ok());
        b->services[s.Key()] = {};
      }));
  AppServer app(In(b_), kPodB, kAppPort);
  AppServer app6(In(b_), kPodB6, kAppPort);
  ASSERT_TRUE(app.ok() && app6.ok());

  EXPECT_EQ(Exchange(In(a_), kVip, 80, "to the VIP"),
            absl::StrCat("pong from ", kPodB, ": to the VIP"))
      << lines_.All();
  EXPECT_EQ(app.peers(), std::vector<std::string>{kPodA});
  // The seed's outbound shape: next hop = the endpoint's 15008, :authority =
  // endpoint IP : target port, dst.service = the service.
  std::string out = lines_.WaitFor({"INFO access connection complete", "direction=\"outbound\"",
                                    absl::StrCat("dst.addr=", kPodB, ":15008")});
  ASSERT_FALSE(out.empty()) << lines_.All();
  EXPECT_TRUE(absl::StrContains(out, absl::StrCat(" dst.addr=", kPodB, ":15008 dst.hbone_addr=",
                                                  kPodB, ":", kAppPort, " dst.service=\"", kService,
                                                  "\" dst.workload=\"server\" "
                                                  "dst.namespace=\"demo\" dst.identity=\"",
                                                  kServerId, "\" direction=")))
      << out;
  // The inbound side names the service too.
  std::string in = lines_.WaitFor({"INFO access connection complete", "direction=\"inbound\""});
  ASSERT_FALSE(in.empty()) << lines_.All();
  EXPECT_TRUE(absl::StrContains(in, absl::StrCat(" dst.service=\"", kService, "\" dst.workload=")))
      << in;

  EXPECT_EQ(Exchange(In(a_), kVip6, 80, "to the v6 VIP"),
            absl::StrCat("pong from ", kPodB6, ": to the v6 VIP"))
      << lines_.All();
  std::string out6 = lines_.WaitFor({"access connection complete", "direction=\"outbound\"",
                                     absl::StrCat("dst.addr=[", kPodB6, "]:15008")});
  ASSERT_FALSE(out6.empty()) << lines_.All();
  EXPECT_TRUE(absl::StrContains(out6, absl::StrCat("dst.hbone_addr=[", kPodB6, "]:", kAppPort,
                                                   " dst.service=\"", kService, "\"")))
      << out6;
}

TEST_F(NodeProxyE2eTest, VipLoadIsSpreadOverEndpointsAndUnhealthyOnesAreSkipped) {
  ASSERT_NO_FATAL_FAILURE(
      Start("", [](runtime::WorkloadDirectory* dir, runtime::Workload* a, runtime::Workload* b) {
        runtime::Service s = ServerService({kVip});
        ASSERT_TRUE(dir->UpsertService(s).ok());
        a->services[s.Key()] = {};
        b->services[s.Key()] = {};
        // A third endpoint that is unhealthy, at an address nobody answers on:
        // picking it would fail the connection.
        runtime::Workload dead = *b;
        dead.uid = "pod-dead";
        dead.name = "server-dead";
        dead.addresses = {"198.18.2.99"};
        dead.healthy = false;
        ASSERT_TRUE(dir->Upsert(dead).ok());
      }));
  AppServer app_a(In(a_), kPodA, kAppPort);
  AppServer app_b(In(b_), kPodB, kAppPort);
  ASSERT_TRUE(app_a.ok() && app_b.ok());

  constexpr int kConnections = 100;
  int ok = 0;
  for (int i = 0; i < kConnections; ++i) {
    std::string reply = Exchange(In(a_), kVip, 80, "x");
    if (absl::StartsWith(reply, "pong from ")) ++ok;
  }
  EXPECT_EQ(ok, kConnections) << lines_.All();
  size_t on_a = app_a.peers().size();
  size_t on_b = app_b.peers().size();
  std::cout << "VIP load spread over " << kConnections << " connections: client pod " << on_a
            << ", server pod " << on_b << "\n";
  EXPECT_EQ(on_a + on_b, static_cast<size_t>(kConnections));
  EXPECT_GT(on_a, 0u);
  EXPECT_GT(on_b, 0u);
  EXPECT_TRUE(lines_.Matching({"198.18.2.99"}).empty()) << lines_.All();
}

TEST_F(NodeProxyE2eTest, VipWithoutHealthyEndpointIsRefusedAndLogged) {
  ASSERT_NO_FATAL_FAILURE(
      Start("", [](runtime::WorkloadDirectory* dir, runtime::Workload*, runtime::Workload* b) {
        runtime::Service s = ServerService({kVip});
        ASSERT_TRUE(dir->UpsertService(s).ok());
        b->services[s.Key()] = {};
        b->healthy = false;
      }));
  AppServer app(In(b_), kPodB, kAppPort);
  ASSERT_TRUE(app.ok());
  std::string reply = Exchange(In(a_), kVip, 80, "anyone?");
  EXPECT_FALSE(absl::StrContains(reply, "pong")) << reply;
  EXPECT_TRUE(app.peers().empty());
  std::string out = lines_.WaitFor({"ERROR access connection complete", "direction=\"outbound\""});
  ASSERT_FALSE(out.empty()) << lines_.All();
  EXPECT_TRUE(
      absl::StrContains(out, absl::StrCat("dst.addr=", kVip, ":80 dst.service=\"", kService, "\"")))
      << out;
  EXPECT_TRUE(absl::StrContains(out, absl::StrCat("no healthy upstream: ", kVip, ":80"))) << out;
  // A port the service does not have is refused the same way.
  reply = Exchange(In(a_), kVip, 81, "wrong port");
  EXPECT_FALSE(absl::StrContains(reply, "pong")) << reply;
  EXPECT_FALSE(lines_.WaitFor({"no healthy upstream: 198.19.0.10:81"}).empty()) << lines_.All();
}

// Waypoints. The waypoint here is a stand-in built from the library's
// HboneServer in the node netns (198.18.1.1:15008, its own SVID): it
// relays each CONNECT to its :authority as plain TCP; a DNAT rule in the
// node netns plays kube-proxy for the VIP. What is checked is the node
// proxy's side: pod A's outbound line in the seed's shape.
constexpr char kWaypointId[] = "spiffe://cluster.local/ns/demo/sa/waypoint";
constexpr char kWaypointIp[] = "198.18.1.1";

class WaypointE2eTest : public NodeProxyE2eTest {
 protected:
  // StartWaypoint runs the stand-in waypoint on the proxy's loop.
  void StartWaypoint() {
    // The service range needs a route before DNAT rewrites the address.
    ASSERT_EQ(
        std::system(
            absl::StrCat("ip -n ", topo_.node(), " route add 198.19.0.0/16 via ", kPodB).c_str()),
        0);
    ASSERT_EQ(
        std::system(absl::StrCat("ip netns exec ", topo_.node(), " iptables -t nat -A OUTPUT -d ",
                                 kVip, " -p tcp --dport 80 -j DNAT --to-destination ", kPodB, ":",
                                 kAppPort)
                        .c_str()),
        0);
    holders_[kWaypointId] = Holder(ca_, kWaypointId);
    auto td = identity::TrustDomain::Parse("cluster.local");
    auto bundle = identity::TrustBundle::FromPem(*td, ca_.CaPem());
    auto set = identity::TrustBundleSet::Create({*bundle});
    ASSERT_TRUE(set.ok());
    auto ctx = hbone::NewServerContext(holders_[kWaypointId],
                                       std::make_shared<identity::TrustBundleSource>(*set));
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    waypoint_ctx_ = std::move(*ctx);
    absl::StatusOr<netns::UniqueFd> lfd = netns::SocketIn(node_, AF_INET, SOCK_STREAM, 0);
    ASSERT_TRUE(lfd.ok());
    sockaddr_storage a;
    socklen_t len = Sockaddr(kWaypointIp, 15008, &a);
    int one = 1;
    setsockopt(lfd->get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ASSERT_EQ(bind(lfd->get(), reinterpret_cast<sockaddr*>(&a), len), 0);
    ASSERT_EQ(listen(lfd->get(), 64), 0);
    runtime::ServerOptions so;
    so.listen_fd = lfd->release();
    so.ssl_ctx = waypoint_ctx_.get();
    so.identity = identity::SpiffeId::Parse(kWaypointId).value();
    so.log = waypoint_lines_.Sink();
    so.upstream_socket = [this](const ambient::SocketAddress& up,
                                const ambient::SocketAddress&) -> absl::StatusOr<int> {
      absl::StatusOr<netns::UniqueFd> fd = netns::SocketIn(node_, up.family(), SOCK_STREAM, 0);
      if (!fd.ok()) return fd.status();
      return fd->release();
    };
    std::atomic<bool> done{false};
    absl::Status st;
    loop_->Post([&] {
      auto server = runtime::HboneServer::New(loop_.get(), std::move(so));
      if (server.ok()) {
        waypoint_ = std::move(*server);
      } else {
        st = server.status();
      }
      done = true;
    });
    for (int i = 0; i < 500 && !done; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_TRUE(done && st.ok()) << st;
  }
  void TearDown() override {
    if (loop_ && waypoint_) {
      std::atomic<bool> done{false};
      loop_->Post([&] {
        waypoint_.reset();
        done = true;
      });
      for (int i = 0; i < 500 && !done; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    NodeProxyE2eTest::TearDown();
  }

  // The directory entries: the waypoint workload (node IP), its service
  // (reached by hostname), and the server's service with or without it.
  static void AddWaypoint(runtime::WorkloadDirectory* dir) {
    runtime::Service wps;
    wps.name = "waypoint";
    wps.ns = "demo";
    wps.hostname = "waypoint.demo.svc.cluster.local";
    wps.ports = {{15008, 15008}};
    ASSERT_TRUE(dir->UpsertService(wps).ok());
    runtime::Workload wp;
    wp.uid = "pod-waypoint";
    wp.name = "waypoint";
    wp.ns = "demo";
    wp.service_account = "waypoint";
    wp.addresses = {kWaypointIp};
    wp.services[wps.Key()] = {};
    ASSERT_TRUE(dir->Upsert(wp).ok());
  }
  static runtime::GatewayAddress WaypointRef() {
    runtime::GatewayAddress g;
    g.hostname_namespace = "demo";
    g.hostname = "waypoint.demo.svc.cluster.local";
    return g;
  }

  tls::UniquePtr<SSL_CTX> waypoint_ctx_;
  std::unique_ptr<runtime::HboneServer> waypoint_;
  Lines waypoint_lines_;
};

// The field names of a ztunnel access line, in order ("src.addr", ...).
std::vector<std::string> FieldNames(const std::string& line) {
  std::vector<std::string> out;
  size_t at = line.find("src.addr=");
  while (at != std::string::npos && at < line.size()) {
    size_t eq = line.find('=', at);
    if (eq == std::string::npos) break;
    out.push_back(line.substr(at, eq - at));
    size_t next = eq + 1;
    if (next < line.size() && line[next] == '"') {
      next = line.find('"', next + 1);
      if (next == std::string::npos) break;
      ++next;
    } else {
      next = line.find(' ', next);
      if (next == std::string::npos) break;
    }
    at = line.find_first_not_of(' ', next);
  }
  return out;
}

TEST_F(WaypointE2eTest, ServiceWithWaypointGoesThroughItInTheSeedsShape) {
  ASSERT_NO_FATAL_FAILURE(
      Start("", [](runtime::WorkloadDirectory* dir, runtime::Workload*, runtime::Workload* b) {
        AddWaypoint(dir);
        runtime::Service s = ServerService({kVip});
        s.waypoint = WaypointRef();
        ASSERT_TRUE(dir->UpsertService(s).ok());
        b->services[s.Key()] = {};
      }));
  ASSERT_NO_FATAL_FAILURE(StartWaypoint());
  AppServer app(In(b_), kPodB, kAppPort);
  ASSERT_TRUE(app.ok());

  EXPECT_EQ(Exchange(In(a_), kVip, 80, "via the waypoint"),
            absl::StrCat("pong from ", kPodB, ": via the waypoint"))
      << lines_.All() << "\n"
      << waypoint_lines_.All();

  // Pod A's line: dst.addr = waypoint:15008, dst.hbone_addr = VIP:port,
  // dst.service = the service, dst.workload/namespace/identity = the waypoint.
  std::string out = lines_.WaitFor({"INFO access connection complete", "direction=\"outbound\""});
  ASSERT_FALSE(out.empty()) << lines_.All();
  EXPECT_TRUE(absl::StrContains(out, absl::StrCat("src.addr=", kPodA, ":"))) << out;
  EXPECT_TRUE(absl::StrContains(
      out, absl::StrCat(" src.workload=\"client\" src.namespace=\"demo\" src.identity=\"",
                        kClientId, "\" dst.addr=", kWaypointIp, ":15008 dst.hbone_addr=", kVip,
                        ":80 dst.service=\"", kService,
                        "\" dst.workload=\"waypoint\" dst.namespace=\"demo\" dst.identity=\"",
                        kWaypointId, "\" direction=\"outbound\" bytes_sent=16 bytes_recv=")))
      << out;
  // Field for field, the seed's line (productpage -> details via waypoint).
  const std::string seed =
      "src.addr=10.28.2.18:51960 src.workload=\"productpage-v1-…\" src.namespace=\"default\" "
      "src.identity=\"spiffe://cluster.local/ns/default/sa/bookinfo-productpage\" "
      "dst.addr=10.28.2.14:15008 dst.hbone_addr=34.118.226.6:9080 "
      "dst.service=\"details.default.svc.cluster.local\" "
      "dst.workload=\"waypoint-7594b5b786-vgjwz\" "
      "dst.namespace=\"default\" dst.identity=\"spiffe://cluster.local/ns/default/sa/waypoint\" "
      "direction=\"outbound\" bytes_sent=794 bytes_recv=414 duration=\"40ms\"";
  EXPECT_EQ(FieldNames(out), FieldNames(seed)) << out;
  EXPECT_EQ(FieldNames(seed).size(), 14u);
  // The waypoint saw pod A's identity and the VIP as :authority.
  std::string wp = waypoint_lines_.WaitFor({"access connection complete", "direction=\"inbound\""});
  ASSERT_FALSE(wp.empty()) << waypoint_lines_.All();
  EXPECT_TRUE(absl::StrContains(wp, absl::StrCat("src.identity=\"", kClientId, "\""))) << wp;
  EXPECT_TRUE(absl::StrContains(wp, absl::StrCat("dst.hbone_addr=", kVip, ":80"))) << wp;
}

TEST_F(WaypointE2eTest, WorkloadAddressedTrafficToAWorkloadBehindAWaypointGoesThroughIt) {
  ASSERT_NO_FATAL_FAILURE(
      Start("", [](runtime::WorkloadDirectory* dir, runtime::Workload*, runtime::Workload* b) {
        AddWaypoint(dir);
        b->waypoint = WaypointRef();
      }));
  ASSERT_NO_FATAL_FAILURE(StartWaypoint());
  AppServer app(In(b_), kPodB, kAppPort);
  ASSERT_TRUE(app.ok());
  EXPECT_EQ(Exchange(In(a_), kPodB, kAppPort, "to B"), absl::StrCat("pong from ", kPodB, ": to B"))
      << lines_.All() << "\n"
      << waypoint_lines_.All();
  std::string out = lines_.WaitFor({"INFO access connection complete", "direction=\"outbound\""});
  ASSERT_FALSE(out.empty()) << lines_.All();
  EXPECT_TRUE(absl::StrContains(
      out, absl::StrCat(" dst.addr=", kWaypointIp, ":15008 dst.hbone_addr=", kPodB, ":", kAppPort,
                        " dst.workload=\"waypoint\" dst.namespace=\"demo\" dst.identity=\"",
                        kWaypointId, "\" direction=\"outbound\"")))
      << out;
  // The waypoint's relay reached pod B from the node (15006, plaintext).
  std::string in = lines_.WaitFor({"INFO access connection complete", "direction=\"inbound\""});
  ASSERT_FALSE(in.empty()) << lines_.All();
  EXPECT_TRUE(absl::StrContains(in, "dst.workload=\"server\"")) << in;
}

#ifdef AMBIENT_WAYPOINT_BIN
// The example waypoint (examples/waypoint) as a process in a waypoint pod of
// its own (netns with a veth to the node, 198.18.3.2), reading the same node
// file and local config as the node proxy: pod A -> VIP -> node proxy ->
// waypoint -> node proxy -> pod B.
constexpr char kNodeToW[] = "198.18.3.1";
constexpr char kWaypointPodIp[] = "198.18.3.2";

// WaypointPod is the waypoint's netns, removed with the object.
class WaypointPod {
 public:
  explicit WaypointPod(const std::string& node) {
    name_ = absl::StrCat(node, "-w");
    ok_ = Run("ip netns add " + name_);
    created_ = ok_;
    ok_ =
        ok_ && Run(absl::StrCat("ip -n ", name_, " link set lo up")) &&
        Run(absl::StrCat("ip -n ", node, " link add vw type veth peer name eth0 netns ", name_)) &&
        Run(absl::StrCat("ip -n ", node, " addr add ", kNodeToW, "/24 dev vw")) &&
        Run(absl::StrCat("ip -n ", node, " link set vw up")) &&
        Run(absl::StrCat("ip -n ", name_, " addr add ", kWaypointPodIp, "/24 dev eth0")) &&
        Run(absl::StrCat("ip -n ", name_, " link set eth0 up")) &&
        Run(absl::StrCat("ip -n ", name_, " route add default via ", kNodeToW));
  }
  ~WaypointPod() {
    if (created_) Run("ip netns del " + name_);
  }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }

 private:
  static bool Run(const std::string& cmd) {
    return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
  }
  std::string name_;
  bool ok_ = false;
  bool created_ = false;
};

constexpr char kOnlyWaypoint[] = R"({"policies": [{
    "name": "only-waypoint", "namespace": "demo", "scope": "WORKLOAD_SELECTOR",
    "action": "ALLOW", "rules": [{"clauses": [{"matches": [
      {"principals": [{"exact": "cluster.local/ns/demo/sa/waypoint"}]}]}]}]}]})";

class RealWaypointE2eTest : public NodeProxyE2eTest {
 protected:
  void SetUp() override {
    NodeProxyE2eTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    pod_ = std::make_unique<WaypointPod>(topo_.node());
    ASSERT_TRUE(pod_->ok()) << "could not build the waypoint pod's netns";
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    NodeProxyE2eTest::TearDown();
    pod_.reset();
  }

  static void Write(const std::string& path, const std::string& text) {
    FILE* f = fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr) << path;
    fwrite(text.data(), 1, text.size(), f);
    fclose(f);
  }

  // WriteMesh writes the node file and its local config (ztunnel's format):
  // pods A and B, the waypoint (workload and service), and the service
  // "server" (VIP 198.19.0.10:80 -> 9080) behind the waypoint when
  // `service_waypoint`; pod B itself behind it when `workload_waypoint`.
  void WriteMesh(bool service_waypoint, bool workload_waypoint, bool b_only_waypoint) {
    hbone::testing::KeyAndCert wp = ca_.Leaf(kWaypointId);
    ASSERT_NO_FATAL_FAILURE(Write(dir_ + "/ca.pem", ca_.CaPem()));
    ASSERT_NO_FATAL_FAILURE(Write(dir_ + "/waypoint.pem", hbone::testing::TestCa::CertPem(wp)));
    ASSERT_NO_FATAL_FAILURE(Write(dir_ + "/waypoint.key", hbone::testing::TestCa::KeyPem(wp)));
    const std::string gw =
        R"({destination: "demo/waypoint.demo.svc.cluster.local", hboneMtlsPort: 15008})";
    std::string yaml =
        absl::StrCat(R"(workloads:
- uid: pod-a
  name: client
  namespace: demo
  serviceAccount: client
  workloadIps: [")",
                     kPodA, R"(", ")", kPodA6, R"("]
  protocol: HBONE
- uid: pod-b
  name: server
  namespace: demo
  serviceAccount: server
  workloadIps: [")",
                     kPodB, R"(", ")", kPodB6, R"("]
  protocol: HBONE
  services: {"demo/server.demo.svc.cluster.local": {}}
)",
                     workload_waypoint ? "  waypoint: " + gw + "\n" : "",
                     b_only_waypoint ? "  authorizationPolicies: [demo/only-waypoint]\n" : "",
                     R"(- uid: pod-waypoint
  name: waypoint
  namespace: demo
  serviceAccount: waypoint
  workloadIps: [")",
                     kWaypointPodIp, R"("]
  protocol: HBONE
  services: {"demo/waypoint.demo.svc.cluster.local": {}}
services:
- name: waypoint
  namespace: demo
  hostname: waypoint.demo.svc.cluster.local
  vips: []
  ports: {15008: 15008}
- name: server
  namespace: demo
  hostname: server.demo.svc.cluster.local
  vips: ["/)",
                     kVip, R"("]
  ports: {80: 9080}
)",
                     service_waypoint ? "  waypoint: " + gw + "\n" : "");
    ASSERT_NO_FATAL_FAILURE(Write(dir_ + "/mesh.yaml", yaml));
    ASSERT_NO_FATAL_FAILURE(Write(dir_ + "/node.json", R"({
  "trust_domain": "cluster.local", "trust_bundle": "ca.pem", "local_config": "mesh.yaml",
  "workloads": [{"uid": "pod-waypoint", "cert": "waypoint.pem", "key": "waypoint.key"}]})"));
  }

  // StartAll starts the node proxy with the node file's directory (pods A
  // and B handed over by the agent) and the waypoint process.
  void StartAll(const std::string& node_policy = "", const std::string& waypoint_policy = "") {
    absl::StatusOr<examples::NodeConfig> config = examples::LoadNodeConfig(dir_ + "/node.json");
    ASSERT_TRUE(config.ok()) << config.status();
    ASSERT_NO_FATAL_FAILURE(Start(node_policy, [&](runtime::WorkloadDirectory* dir,
                                                   runtime::Workload* a, runtime::Workload* b) {
      for (const runtime::Service& s : config->services) ASSERT_TRUE(dir->UpsertService(s).ok());
      for (const examples::PodConfig& p : config->pods) {
        if (p.workload.uid == "pod-a")
          *a = p.workload;
        else if (p.workload.uid == "pod-b")
          *b = p.workload;
        else
          ASSERT_TRUE(dir->Upsert(p.workload).ok());
      }
    }));
    std::vector<std::string> args = {"ip",
                                     "netns",
                                     "exec",
                                     pod_->name(),
                                     AMBIENT_WAYPOINT_BIN,
                                     "--config",
                                     dir_ + "/node.json",
                                     "--workload",
                                     "pod-waypoint"};
    if (!waypoint_policy.empty()) {
      ASSERT_NO_FATAL_FAILURE(Write(dir_ + "/policy.json", waypoint_policy));
      args.push_back("--policy");
      args.push_back(dir_ + "/policy.json");
    }
    out_path_ = dir_ + "/waypoint.out";
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      int fd = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    ASSERT_FALSE(WaitWaypoint({"info  waypoint  started:"}).empty()) << WaypointOut();
  }

  std::string WaypointOut() const {
    FILE* f = fopen(out_path_.c_str(), "r");
    if (f == nullptr) return "";
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
    fclose(f);
    return out;
  }
  // WaitWaypoint waits up to 10 s for a waypoint line with all `parts`.
  std::string WaitWaypoint(const std::vector<std::string>& parts) const {
    for (int i = 0; i < 1000; ++i) {
      for (absl::string_view l : absl::StrSplit(WaypointOut(), '\n')) {
        bool all = true;
        for (const std::string& p : parts) all = all && absl::StrContains(l, p);
        if (all) return std::string(l);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return "";
  }

  std::unique_ptr<WaypointPod> pod_;
  pid_t pid_ = -1;
  std::string out_path_;
};

TEST_F(RealWaypointE2eTest, VipThroughTheWaypointToPodBWithEveryLineInItsShape) {
  ASSERT_NO_FATAL_FAILURE(WriteMesh(/*service_waypoint=*/true, false, false));
  ASSERT_NO_FATAL_FAILURE(StartAll());
  AppServer app(In(b_), kPodB, kAppPort);
  ASSERT_TRUE(app.ok());
  EXPECT_EQ(Exchange(In(a_), kVip, 80, "via the real waypoint"),
            absl::StrCat("pong from ", kPodB, ": via the real waypoint"))
      << lines_.All() << "\n"
      << WaypointOut();

  // Pod A's outbound line, as in the seed: dst.addr = waypoint:15008,
  // dst.hbone_addr = VIP:port, dst.service, the waypoint's workload,
  // namespace and identity.
  std::string out = lines_.WaitFor({"INFO access connection complete", "direction=\"outbound\"",
                                    absl::StrCat("src.addr=", kPodA, ":")});
  ASSERT_FALSE(out.empty()) << lines_.All();
  EXPECT_TRUE(absl::StrContains(
      out, absl::StrCat(" src.workload=\"client\" src.namespace=\"demo\" src.identity=\"",
                        kClientId, "\" dst.addr=", kWaypointPodIp, ":15008 dst.hbone_addr=", kVip,
                        ":80 dst.service=\"", kService,
                        "\" dst.workload=\"waypoint\" dst.namespace=\"demo\" dst.identity=\"",
                        kWaypointId, "\" direction=\"outbound\" bytes_sent=21 bytes_recv=")))
      << out;
  const std::string seed =
      "src.addr=10.28.2.18:51960 src.workload=\"productpage-v1-…\" src.namespace=\"default\" "
      "src.identity=\"spiffe://cluster.local/ns/default/sa/bookinfo-productpage\" "
      "dst.addr=10.28.2.14:15008 dst.hbone_addr=34.118.226.6:9080 "
      "dst.service=\"details.default.svc.cluster.local\" "
      "dst.workload=\"waypoint-7594b5b786-vgjwz\" "
      "dst.namespace=\"default\" dst.identity=\"spiffe://cluster.local/ns/default/sa/waypoint\" "
      "direction=\"outbound\" bytes_sent=794 bytes_recv=414 duration=\"40ms\"";
  EXPECT_EQ(FieldNames(out), FieldNames(seed)) << out;

  // The waypoint's inbound leg: from pod A (its identity and workload), the
  // VIP as :authority, the service named.
  std::string wp_in = WaitWaypoint({"info  access", "direction=\"inbound\""});
  ASSERT_FALSE(wp_in.empty()) << WaypointOut();
  EXPECT_TRUE(absl::StrContains(wp_in, absl::StrCat("src.addr=", kPodA, ":"))) << wp_in;
  EXPECT_TRUE(absl::StrContains(
      wp_in, absl::StrCat("src.workload=\"client\" src.namespace=\"demo\" src.identity=\"",
                          kClientId, "\" dst.addr=", kWaypointPodIp, ":15008 dst.hbone_addr=", kVip,
                          ":80 dst.service=\"", kService,
                          "\" dst.workload=\"waypoint\" dst.namespace=\"demo\" dst.identity=\"",
                          kWaypointId, "\" direction=\"inbound\" bytes_sent=")))
      << wp_in;
  // Its outbound leg: from the waypoint to pod B's 15008, pod B's target
  // port as :authority, dst.service, pod B's workload and identity.
  std::string wp_out = WaitWaypoint({"info  access", "direction=\"outbound\""});
  ASSERT_FALSE(wp_out.empty()) << WaypointOut();
  EXPECT_TRUE(absl::StrContains(
      wp_out, absl::StrCat("src.workload=\"waypoint\" src.namespace=\"demo\" src.identity=\"",
                           kWaypointId, "\" dst.addr=", kPodB, ":15008 dst.hbone_addr=", kPodB, ":",
                           kAppPort, " dst.service=\"", kService,
                           "\" dst.workload=\"server\" dst.namespace=\"demo\" dst.identity=\"",
                           kServerId, "\" direction=\"outbound\" bytes_sent=21 bytes_recv=")))
      << wp_out;
  // Pod B's inbound line: the waypoint called, with its identity.
  std::string in = lines_.WaitFor({"INFO access connection complete", "direction=\"inbound\""});
  ASSERT_FALSE(in.empty()) << lines_.All();
  EXPECT_TRUE(absl::StrContains(in, absl::StrCat("src.addr=", kWaypointPodIp, ":"))) << in;
  EXPECT_TRUE(absl::StrContains(
      in, absl::StrCat("src.workload=\"waypoint\" src.namespace=\"demo\" src.identity=\"",
                       kWaypointId, "\" dst.addr=", kPodB, ":15008 dst.hbone_addr=", kPodB, ":",
                       kAppPort, " dst.service=\"", kService, "\" dst.workload=\"server\"")))
      << in;
  // The app saw the connection come from the waypoint pod.
  ASSERT_EQ(app.peers().size(), 1u);
  EXPECT_TRUE(absl::StartsWith(app.peers()[0], kWaypointPodIp)) << app.peers()[0];
}

TEST_F(RealWaypointE2eTest, WorkloadAddressedTrafficToAWorkloadBehindTheWaypointGoesThroughIt) {
  ASSERT_NO_FATAL_FAILURE(WriteMesh(false, /*workload_waypoint=*/true, false));
  ASSERT_NO_FATAL_FAILURE(StartAll());
  AppServer app(In(b_), kPodB, kAppPort);
  ASSERT_TRUE(app.ok());
  EXPECT_EQ(Exchange(In(a_), kPodB, kAppPort, "to B"), absl::StrCat("pong from ", kPodB, ": to B"))
      << lines_.All() << "\n"
      << WaypointOut();
  std::string out = lines_.WaitFor({"INFO access connection complete", "direction=\"outbound\"",
                                    absl::StrCat("src.addr=", kPodA, ":")});
  ASSERT_FALSE(out.empty()) << lines_.All();
  EXPECT_TRUE(absl::StrContains(
      out,
      absl::StrCat(" dst.addr=", kWaypointPodIp, ":15008 dst.hbone_addr=", kPodB, ":", kAppPort,
                   " dst.workload=\"waypoint\" dst.namespace=\"demo\" dst.identity=\"", kWaypointId,
                   "\" direction=\"outbound\"")))
      << out;
  std::string wp_out = WaitWaypoint({"info  access", "direction=\"outbound\""});
  EXPECT_TRUE(absl::StrContains(
      wp_out, absl::StrCat("dst.addr=", kPodB, ":15008 dst.hbone_addr=", kPodB, ":", kAppPort)))
      << WaypointOut();
  std::string in = lines_.WaitFor({"INFO access connection complete", "direction=\"inbound\""});
  EXPECT_TRUE(absl::StrContains(in, absl::StrCat("src.identity=\"", kWaypointId, "\""))) << in;
}

TEST_F(RealWaypointE2eTest, DirectBypassOfTheWaypointIsRefusedByPodBsPolicyAndLogged) {
  // Pod B is behind the waypoint and its policy allows only the waypoint.
  ASSERT_NO_FATAL_FAILURE(WriteMesh(true, /*workload_waypoint=*/true, /*b_only_waypoint=*/true));
  ASSERT_NO_FATAL_FAILURE(StartAll(kOnlyWaypoint));
  AppServer app(In(b_), kPodB, kAppPort);
  ASSERT_TRUE(app.ok());
  // Through the waypoint: allowed.
  EXPECT_EQ(Exchange(In(a_), kVip, 80, "by the book"),
            absl::StrCat("pong from ", kPodB, ": by the book"))
      << lines_.All() << "\n"
      << WaypointOut();
  ASSERT_FALSE(
      lines_.WaitFor({"INFO access connection complete", "direction=\"inbound\""}).empty());

  // Around it: HBONE straight to pod B's 15008 with pod A's SVID (what a
  // client ignoring the waypoint would do), from outside pod A's capture.
  auto td = identity::TrustDomain::Parse("cluster.local");
  auto bundle = identity::TrustBundle::FromPem(*td, ca_.CaPem());
  auto set = identity::TrustBundleSet::Create({*bundle});
  ASSERT_TRUE(set.ok());
  auto bundles = std::make_shared<identity::TrustBundleSource>(*set);
  auto ctx = hbone::NewClientContext(Holder(ca_, kClientId), bundles);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  // Written before the tunnel exists: once refused, the tunnel closes
  // pair[1], and a later write would raise SIGPIPE and end the test binary.
  ASSERT_EQ(send(pair[0], "sneaky", 6, MSG_NOSIGNAL), 6);
  std::unique_ptr<runtime::HboneClient> bypass;
  std::atomic<bool> done{false};
  std::atomic<int> http_status{-1};
  std::string server_identity;  // written before `done`
  loop_->Post([&] {
    runtime::ClientOptions co;
    co.ssl_ctx = ctx->get();
    co.bundles = bundles;
    co.identity = test_support::Id(kClientId);
    co.dial_socket = [this](const ambient::SocketAddress& via) -> absl::StatusOr<int> {
      absl::StatusOr<netns::UniqueFd> fd = netns::SocketIn(node_, via.family(), SOCK_STREAM, 0);
      if (!fd.ok()) return fd.status();
      return fd->release();
    };
    bypass = *runtime::HboneClient::New(loop_.get(), co);
    runtime::TunnelTarget t;
    t.via = *ambient::SocketAddress::ParseIp(kPodB, 15008);
    t.authority = absl::StrCat(kPodB, ":", kAppPort);
    t.expected_identities = {test_support::Id(kServerId)};
    bypass->Tunnel(t, pair[1], pair[1], /*owns_fds=*/true, [&](const runtime::TunnelResult& r) {
      http_status = r.http_status;
      server_identity = r.peer_identity ? r.peer_identity->str() : "";
      done = true;
    });
  });
  for (int i = 0; i < 1000 && !done; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(done);
  EXPECT_EQ(http_status, 401);
  EXPECT_EQ(server_identity, kServerId);  // the handshake finished; the CONNECT was refused
  close(pair[0]);
  std::atomic<bool> gone{false};
  loop_->Post([&] {
    bypass.reset();
    gone = true;
  });
  for (int i = 0; i < 500 && !gone; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  // Pod B's node proxy refused it and said why, with pod A's identity.
  std::string denied = lines_.WaitFor({"ERROR access connection complete", "direction=\"inbound\"",
                                       absl::StrCat("src.identity=\"", kClientId, "\"")});
  ASSERT_FALSE(denied.empty()) << lines_.All();
  EXPECT_TRUE(absl::StrContains(denied, "allow policies exist, but none allowed")) << denied;
  EXPECT_EQ(app.peers().size(), 1u) << "only the waypoint's connection reached the app";
}

TEST_F(RealWaypointE2eTest, TheWaypointEnforcesTheDestinationsPolicy) {
  ASSERT_NO_FATAL_FAILURE(WriteMesh(true, false, false));
  ASSERT_NO_FATAL_FAILURE(StartAll("", R"({"policies": [{
      "name": "deny-client", "namespace": "demo", "scope": "NAMESPACE", "action": "DENY",
      "rules": [{"clauses": [{"matches": [
        {"principals": [{"exact": "cluster.local/ns/demo/sa/client"}]}]}]}]}]})"));
  AppServer app(In(b_), kPodB, kAppPort);
  ASSERT_TRUE(app.ok());
  std::string reply = Exchange(In(a_), kVip, 80, "denied");
  EXPECT_FALSE(absl::StrContains(reply, "pong")) << reply;
  std::string wp_in = WaitWaypoint({"error access", "direction=\"inbound\""});
  ASSERT_FALSE(wp_in.empty()) << WaypointOut();
  EXPECT_TRUE(absl::StrContains(wp_in, "explicitly denied by demo/deny-client")) << wp_in;
  EXPECT_TRUE(absl::StrContains(wp_in, absl::StrCat("src.identity=\"", kClientId, "\""))) << wp_in;
  EXPECT_TRUE(app.peers().empty());
}
#endif  // AMBIENT_WAYPOINT_BIN

}  // namespace
}  // namespace ambient::e2e
