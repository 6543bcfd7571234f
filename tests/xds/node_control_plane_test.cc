// NodeControlPlane against the fake istiod (tests/xds/fake_istiod.py) serving
// delta ADS and the Istio CA: a pod's workload pushed over xDS is matched on
// this node, its certificate is fetched for spiffe://TD/ns/NS/sa/SA,
// readiness waits for it, and the certificate is dropped with its last pod.
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ambient/authz/policy_store.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/workload_directory.h"
#include "ambient/xds/node_control_plane.h"
#include "gtest/gtest.h"
#include "support/process.h"
#include "support/test_pki.h"
#include "xds/istiod_protos.h"
#include "xds/json_line_watch.h"

namespace ambient::xds {
namespace {

using json = nlohmann::json;

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
}

std::string B64(std::vector<unsigned char> bytes) {
  return absl::Base64Escape(std::string(bytes.begin(), bytes.end()));
}

json Pod(const std::string& ns, const std::string& name, const std::string& sa,
         const std::string& node, unsigned char last) {
  return {{"workload",
           {{"uid", "Kubernetes//Pod/" + ns + "/" + name},
            {"name", name},
            {"namespace", ns},
            {"addresses", {B64({198, 18, 0, last})}},
            {"tunnelProtocol", "HBONE"},
            {"serviceAccount", sa},
            {"node", node}}}};
}

class NodeControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/ambient-ncp-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    ASSERT_EQ(test_istiod::GenerateProtos(dir_), "");
    auto loop = runtime::EventLoop::New();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(*loop);
    // The mesh CA the fake istiod signs with.
    int64_t now = absl::ToUnixSeconds(absl::Now());
    test_support::CertSpec ca_spec = test_support::CaSpec("cluster.local");
    ca_spec.not_before = now - 3600;
    ca_spec.not_after = now + 86400 * 3;
    test_support::Issued ca = test_support::Issue(ca_spec);
    ca_pem_ = ca.CertPem();
    WriteFile(dir_ + "/ca-cert.pem", ca_pem_);
    WriteFile(dir_ + "/ca-key.pem", ca.KeyPem());
    WriteFile(dir_ + "/istio-token", "tok-1");

    std::vector<std::string> argv = {"/usr/bin/python3",
                                     AMBIENT_SOURCE_DIR "/tests/xds/fake_istiod.py",
                                     dir_,
                                     "--ca",
                                     dir_ + "/ca-cert.pem",
                                     dir_ + "/ca-key.pem"};
    istiod_ = test_support::Child::Spawn(argv);
    std::string line = test_support::ReadLine(istiod_.out(), 20000);
    ASSERT_TRUE(absl::SimpleAtoi(line, &port_) && port_ > 0)
        << line << test_support::Drain(istiod_.err(), 500);
    watch_ = std::make_unique<testing::JsonLineWatch<std::deque<json>>>(loop_.get(), &requests_);
    ASSERT_TRUE(watch_->Start(istiod_.out()).ok());

    NodeControlPlaneOptions o;
    o.xds.address = absl::StrCat("127.0.0.1:", port_);
    o.xds.token_file = dir_ + "/istio-token";
    o.xds.cluster_id = "cluster-7";
    o.node.pod_name = "ztunnel-x";
    o.node.pod_namespace = "istio-system";
    o.node.instance_ip = "198.18.0.5";
    o.node.node_name = "node-1";
    o.certificates.seed = 1;
    o.workloads = &directory_;
    o.policies = &policies_;
    o.prefetch = prefetch_;
    o.bundles = bundles_;
    auto cp = NodeControlPlane::New(loop_.get(), std::move(o));
    ASSERT_TRUE(cp.ok()) << cp.status();
    cp_ = std::move(*cp);
    cp_->Start();
  }
  void TearDown() override {
    cp_.reset();
    watch_.reset();
    istiod_ = test_support::Child();
    std::system(absl::StrCat("rm -rf ", dir_).c_str());
  }

  json NextRequest() {
    if (!loop_->RunUntil([this] { return !requests_.empty(); }, absl::Seconds(10))) {
      ADD_FAILURE() << "istiod saw no request";
      return json();
    }
    json r = requests_.front();
    requests_.pop_front();
    return r;
  }
  // NextXdsRequest is the next ADS request; CA requests met on the way are
  // kept in ca_requests_.
  json NextXdsRequest() {
    for (;;) {
      json r = NextRequest();
      if (r.is_null() || r["type"] != "ca") return r;
      ca_requests_.push_back(r);
    }
  }
  void Command(const json& cmd) {
    std::string line = cmd.dump() + "\n";
    ASSERT_EQ(write(istiod_.in(), line.data(), line.size()), static_cast<ssize_t>(line.size()));
  }
  // Mesh pushes pods a (ns1, sa-a, this node), b (ns1, sa-a, this node), c
  // (ns1, sa-c, node-2) and no policies, and waits for the ACKs.
  void Mesh() {
    EXPECT_EQ(NextXdsRequest()["type"], kAddressType);
    EXPECT_EQ(NextXdsRequest()["type"], kAuthorizationType);
    json res = json::array();
    res.push_back(
        {"Kubernetes//Pod/ns1/a", "v1", "workload.Address", Pod("ns1", "a", "sa-a", "node-1", 10)});
    res.push_back(
        {"Kubernetes//Pod/ns1/b", "v1", "workload.Address", Pod("ns1", "b", "sa-a", "node-1", 11)});
    res.push_back(
        {"Kubernetes//Pod/ns1/c", "v1", "workload.Address", Pod("ns1", "c", "sa-c", "node-2", 12)});
    Command({{"push_messages",
              {{"type", kAddressType},
               {"nonce", "a1"},
               {"any_type", kAddressType},
               {"resources", res}}}});
    EXPECT_EQ(NextXdsRequest()["nonce"], "a1");
    Command(
        {{"push", {{"type", kAuthorizationType}, {"nonce", "p1"}, {"resources", json::array()}}}});
    EXPECT_EQ(NextXdsRequest()["nonce"], "p1");
    ASSERT_TRUE(loop_->RunUntil([this] { return cp_->ads()->ready(); }, absl::Seconds(5)));
  }

  bool prefetch_ = true;  // set before SetUp (NoPrefetch fixture)
  std::shared_ptr<identity::TrustBundleSource> bundles_ =
      std::make_shared<identity::TrustBundleSource>();
  std::deque<json> ca_requests_;
  std::string dir_;
  std::string ca_pem_;
  std::unique_ptr<runtime::EventLoop> loop_;
  test_support::Child istiod_;
  std::unique_ptr<testing::JsonLineWatch<std::deque<json>>> watch_;
  std::deque<json> requests_;
  int port_ = 0;
  runtime::WorkloadDirectory directory_;
  authz::PolicyStore policies_;
  std::unique_ptr<NodeControlPlane> cp_;
};

TEST_F(NodeControlPlaneTest, MatchesPodsOfThisNodeByNamespaceAndName) {
  auto early = cp_->MatchPod("ns1", "a", "");
  EXPECT_EQ(early.status().code(), absl::StatusCode::kNotFound) << early.status();
  Mesh();
  auto a = cp_->MatchPod("ns1", "a", "sa-a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->uid, "Kubernetes//Pod/ns1/a");
  EXPECT_EQ(cp_->MatchPod("ns1", "a", "").value().uid, "Kubernetes//Pod/ns1/a");
  // c lives on another node; a's service account must match when given.
  EXPECT_EQ(cp_->MatchPod("ns1", "c", "").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cp_->MatchPod("ns1", "a", "other").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cp_->MatchPod("ns2", "a", "").status().code(), absl::StatusCode::kNotFound);
}

// Without prefetch, a certificate lives exactly as long as its handles.
class NodeControlPlaneNoPrefetchTest : public NodeControlPlaneTest {
 protected:
  NodeControlPlaneNoPrefetchTest() { prefetch_ = false; }
};

TEST_F(NodeControlPlaneNoPrefetchTest, FetchesCertificateAndDropsItWithTheLastPod) {
  Mesh();
  EXPECT_TRUE(cp_->ready());  // no captured pod yet
  auto a = cp_->MatchPod("ns1", "a", "");
  auto b = cp_->MatchPod("ns1", "b", "");
  ASSERT_TRUE(a.ok() && b.ok());
  auto ha = cp_->Credentials(*a);
  ASSERT_TRUE(ha.ok()) << ha.status();
  EXPECT_FALSE(cp_->ready());  // a captured pod without its certificate
  json ca = NextRequest();
  EXPECT_EQ(ca["type"], "ca");
  EXPECT_EQ(ca["identity"], "spiffe://cluster.local/ns/ns1/sa/sa-a");
  EXPECT_EQ(ca["auth"], "Bearer tok-1");
  EXPECT_EQ(ca["clusterid"], "cluster-7");
  ASSERT_TRUE(loop_->RunUntil([&] { return (*ha)->Get() != nullptr; }, absl::Seconds(10)))
      << (cp_->CertificateStatus().empty() ? "" : cp_->CertificateStatus()[0].last_error);
  EXPECT_TRUE(cp_->ready());
  std::vector<CertStatus> st = cp_->CertificateStatus();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].id.str(), "spiffe://cluster.local/ns/ns1/sa/sa-a");
  EXPECT_EQ(st[0].state, CertStatus::State::kAvailable);
  EXPECT_EQ(st[0].users, 1u);
  EXPECT_EQ(cp_->TrustRootsPem(), std::vector<std::string>{ca_pem_});

  // A second pod of the same identity shares the certificate: no new fetch.
  auto hb = cp_->Credentials(*b);
  ASSERT_TRUE(hb.ok());
  EXPECT_EQ((*hb).get(), (*ha).get());
  EXPECT_EQ(cp_->CertificateStatus()[0].users, 2u);
  loop_->RunFor(absl::Milliseconds(200));
  EXPECT_TRUE(requests_.empty());
  EXPECT_EQ(cp_->certificate_stats().fetches_started, 1u);

  // Copies of a handle are one use; the first pod going keeps it for the second.
  std::shared_ptr<identity::CredentialHolder> copy = *ha;
  ha->reset();
  copy.reset();
  loop_->RunFor(absl::Milliseconds(50));
  ASSERT_EQ(cp_->CertificateStatus().size(), 1u);
  EXPECT_EQ(cp_->CertificateStatus()[0].users, 1u);
  hb->reset();
  loop_->RunFor(absl::Milliseconds(50));
  EXPECT_TRUE(cp_->CertificateStatus().empty());
  EXPECT_TRUE(cp_->ready());
}

// Prefetch (ztunnel's): the identities of this node's HBONE workloads are
// fetched as soon as xDS names them, so a pod captured later finds its
// certificate; the CA's root lands in the trust bundles; the certificate
// goes when its workloads leave xDS and no pod holds it.
TEST_F(NodeControlPlaneTest, PrefetchesThisNodesIdentitiesAndFillsTheBundles) {
  EXPECT_EQ(bundles_->Get()->size(), 0u);
  Mesh();
  EXPECT_EQ(cp_->prefetched(), 1u);  // sa-a (pods a and b); c is on node-2
  ASSERT_TRUE(loop_->RunUntil(
      [&] {
        auto st = cp_->CertificateStatus();
        return st.size() == 1 && st[0].state == CertStatus::State::kAvailable;
      },
      absl::Seconds(10)));
  // The CA's log line is read on the loop too: wait for it, keep the rest.
  ASSERT_TRUE(loop_->RunUntil(
      [&] {
        for (auto it = requests_.begin(); it != requests_.end();) {
          if ((*it)["type"] == "ca") {
            ca_requests_.push_back(*it);
            it = requests_.erase(it);
          } else {
            ++it;
          }
        }
        return !ca_requests_.empty();
      },
      absl::Seconds(5)));
  loop_->RunFor(absl::Milliseconds(100));  // (a second one would show now)
  for (const json& r : requests_) EXPECT_NE(r["type"], "ca") << r;
  ASSERT_EQ(ca_requests_.size(), 1u);
  EXPECT_EQ(ca_requests_[0]["identity"], "spiffe://cluster.local/ns/ns1/sa/sa-a");
  EXPECT_TRUE(cp_->ready());
  // The pod captured now gets the certificate at once, without a fetch.
  auto a = cp_->MatchPod("ns1", "a", "sa-a");
  ASSERT_TRUE(a.ok());
  auto h = cp_->Credentials(*a);
  ASSERT_TRUE(h.ok());
  ASSERT_NE((*h)->Get(), nullptr);
  EXPECT_EQ((*h)->Get()->id().str(), "spiffe://cluster.local/ns/ns1/sa/sa-a");
  EXPECT_EQ(cp_->certificate_stats().fetches_started, 1u);
  // The CA's root verifies peers of cluster.local.
  std::shared_ptr<const identity::TrustBundleSet> set = bundles_->Get();
  const identity::TrustBundle* bundle = set->Find("cluster.local");
  ASSERT_NE(bundle, nullptr);
  EXPECT_EQ(bundle->authorities().size(), 1u);

  // Both sa-a pods leave xDS: the captured one still holds the certificate.
  Command({{"push_messages",
            {{"type", kAddressType},
             {"nonce", "a2"},
             {"any_type", kAddressType},
             {"resources", json::array()},
             {"removed", {"Kubernetes//Pod/ns1/a", "Kubernetes//Pod/ns1/b"}}}}});
  EXPECT_EQ(NextXdsRequest()["nonce"], "a2");
  EXPECT_EQ(cp_->prefetched(), 0u);
  ASSERT_EQ(cp_->CertificateStatus().size(), 1u);
  EXPECT_EQ(cp_->CertificateStatus()[0].users, 1u);
  h->reset();
  loop_->RunFor(absl::Milliseconds(50));
  EXPECT_TRUE(cp_->CertificateStatus().empty());
}

TEST_F(NodeControlPlaneTest, HandleOutlivingTheControlPlaneIsHarmless) {
  Mesh();
  auto a = cp_->MatchPod("ns1", "a", "");
  ASSERT_TRUE(a.ok());
  auto h = cp_->Credentials(*a);
  ASSERT_TRUE(h.ok());
  cp_.reset();
  h->reset();
  loop_->RunFor(absl::Milliseconds(20));
}

TEST(NodeControlPlaneOptionsTest, RejectsMissingParts) {
  auto loop = runtime::EventLoop::New();
  ASSERT_TRUE(loop.ok());
  runtime::WorkloadDirectory d;
  authz::PolicyStore p;
  NodeControlPlaneOptions o;
  o.xds.address = "127.0.0.1:1";
  o.node.node_name = "node-1";
  EXPECT_EQ(NodeControlPlane::New(loop->get(), o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.workloads = &d;
  o.policies = &p;
  o.node.node_name = "";
  auto s = NodeControlPlane::New(loop->get(), o).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "node control plane: the node name is required");
  o.node.node_name = "node-1";
  o.xds.address = "no-port";
  EXPECT_EQ(NodeControlPlane::New(loop->get(), o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ambient::xds
