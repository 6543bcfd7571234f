// The CA client of the C ABI (ambient/c/xds.h) against the fake istiod
// (tests/xds/fake_istiod.py --ca): certificates for an identity, their PEM
// and credentials, status, bad options, and freeing in any order.
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ambient/ambient.h"
#include "support/process.h"
#include "support/test_pki.h"
#include "xds/istiod_protos.h"

namespace {

using json = nlohmann::json;

constexpr char kId[] = "spiffe://cluster.local/ns/ns1/sa/sa-a";

void WriteFile(const std::string& path, const std::string& text) {
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr) << path;
  fwrite(text.data(), 1, text.size(), f);
  fclose(f);
}

// Code returns the code of `err` and frees it.
ambient_code Code(ambient_error* err) {
  ambient_code c = ambient_error_code(err);
  ambient_error_free(err);
  return c;
}

std::string Message(ambient_error* err) {
  std::string m = ambient_error_message(err);
  ambient_error_free(err);
  return m;
}

class CapiCaClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/ambient-capi-ca-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    ASSERT_EQ(ambient::xds::test_istiod::GenerateProtos(dir_), "");
    int64_t now = absl::ToUnixSeconds(absl::Now());
    ambient::test_support::CertSpec ca_spec = ambient::test_support::CaSpec("cluster.local");
    ca_spec.not_before = now - 3600;
    ca_spec.not_after = now + 86400 * 3;
    ambient::test_support::Issued ca = ambient::test_support::Issue(ca_spec);
    ca_pem_ = ca.CertPem();
    WriteFile(dir_ + "/ca-cert.pem", ca_pem_);
    WriteFile(dir_ + "/ca-key.pem", ca.KeyPem());
    WriteFile(dir_ + "/istio-token", "tok-1");
    istiod_ = ambient::test_support::Child::Spawn(
        {"/usr/bin/python3", AMBIENT_SOURCE_DIR "/tests/xds/fake_istiod.py", dir_, "--ca",
         dir_ + "/ca-cert.pem", dir_ + "/ca-key.pem", "--state"});
    std::string line = ambient::test_support::ReadLine(istiod_.out(), 20000);
    ASSERT_TRUE(absl::SimpleAtoi(line, &port_) && port_ > 0)
        << line << ambient::test_support::Drain(istiod_.err(), 500);
    ASSERT_EQ(ambient_runtime_loop_new(&loop_), nullptr);
    opts_ = ambient_ca_client_options_new();
    ASSERT_NE(opts_, nullptr);
    std::string address = absl::StrCat("127.0.0.1:", port_);
    ASSERT_EQ(ambient_ca_client_options_set_address(opts_, address.c_str()), nullptr);
    ASSERT_EQ(ambient_ca_client_options_set_token_file(opts_, (dir_ + "/istio-token").c_str()),
              nullptr);
    ASSERT_EQ(ambient_ca_client_options_set_cluster_id(opts_, "cluster-7"), nullptr);
  }
  void TearDown() override {
    ambient_ca_client_options_free(opts_);
    ambient_runtime_loop_free(loop_);
    istiod_ = ambient::test_support::Child();
    std::system(absl::StrCat("rm -rf ", dir_).c_str());
  }

  // RunUntil runs the loop in 20 ms steps until `done` or 10 s passed.
  template <typename F>
  bool RunUntil(F done) {
    for (int i = 0; i < 500; ++i) {
      if (done()) return true;
      ambient_runtime_loop_run_for(loop_, 20);
    }
    return done();
  }

  // CaRequests reads the CA requests the fake printed so far.
  std::vector<json> CaRequests() {
    std::vector<json> out;
    for (;;) {
      std::string line = ambient::test_support::ReadLine(istiod_.out(), 200);
      if (line.empty()) return out;
      json j = json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.value("type", "") == "ca") out.push_back(j);
    }
  }

  void Command(const json& cmd) {
    std::string line = cmd.dump() + "\n";
    ASSERT_EQ(write(istiod_.in(), line.data(), line.size()), static_cast<ssize_t>(line.size()));
  }

  std::string dir_;
  std::string ca_pem_;
  int port_ = 0;
  ambient::test_support::Child istiod_;
  ambient_runtime_loop* loop_ = nullptr;
  ambient_ca_client_options* opts_ = nullptr;
};

std::string ChainPem(const ambient_ca_certificate* cert) {
  size_t len = 0;
  ambient_error* err = ambient_ca_certificate_chain_pem(cert, nullptr, 0, &len);
  if (err != nullptr) return "error: " + Message(err);
  std::string pem(len + 1, '\0');
  size_t again = 0;
  EXPECT_EQ(ambient_ca_certificate_chain_pem(cert, pem.data(), pem.size(), &again), nullptr);
  EXPECT_EQ(again, len);
  pem.resize(len);
  return pem;
}

std::string KeyPem(const ambient_ca_certificate* cert) {
  size_t len = 0;
  ambient_error* err = ambient_ca_certificate_key_pem(cert, nullptr, 0, &len);
  if (err != nullptr) return "error: " + Message(err);
  std::string pem(len + 1, '\0');
  EXPECT_EQ(ambient_ca_certificate_key_pem(cert, pem.data(), pem.size(), &len), nullptr);
  pem.resize(len);
  return pem;
}

std::string RootPem(const ambient_ca_certificate* cert) {
  size_t len = 0;
  ambient_error* err = ambient_ca_certificate_root_pem(cert, nullptr, 0, &len);
  if (err != nullptr) return "error: " + Message(err);
  std::string pem(len + 1, '\0');
  EXPECT_EQ(ambient_ca_certificate_root_pem(cert, pem.data(), pem.size(), &len), nullptr);
  pem.resize(len);
  return pem;
}

// IdOf is the SPIFFE ID of `creds`' leaf ("" when it has none).
std::string IdOf(const ambient_credentials* creds) {
  ambient_spiffe_id* id = nullptr;
  ambient_error* err = ambient_credentials_get1_id(creds, &id);
  if (err != nullptr) return "error: " + Message(err);
  std::string s = ambient_spiffe_id_get0_string(id);
  ambient_spiffe_id_free(id);
  return s;
}

TEST_F(CapiCaClientTest, AcquiresTheIdentitysCertificateFromTheCa) {
  ambient_ca_client* client = nullptr;
  ASSERT_EQ(ambient_ca_client_new(loop_, opts_, &client), nullptr);
  ambient_ca_certificate* cert = nullptr;
  ASSERT_EQ(ambient_ca_client_acquire(client, kId, &cert), nullptr);
  EXPECT_STREQ(ambient_ca_certificate_get0_id(cert), kId);
  EXPECT_EQ(ambient_ca_certificate_state(cert), AMBIENT_CA_INITIALIZING);
  EXPECT_EQ(ambient_ca_certificate_not_after(cert), 0);
  EXPECT_EQ(ChainPem(cert), absl::StrCat("error: no certificate for ", kId, " yet"));

  ambient_credentials* creds = nullptr;
  ASSERT_EQ(ambient_ca_certificate_get1_credentials(cert, &creds), nullptr);
  EXPECT_EQ(IdOf(creds), "error: no credentials");

  ASSERT_TRUE(RunUntil([&] { return ambient_ca_certificate_state(cert) == AMBIENT_CA_AVAILABLE; }));
  int64_t now = time(nullptr);
  // 24 h asked for by default; the fake signs what it is asked.
  EXPECT_GT(ambient_ca_certificate_not_after(cert), now + 86400 - 120);
  EXPECT_LE(ambient_ca_certificate_not_after(cert), now + 86400 + 120);
  EXPECT_EQ(ambient_ca_certificate_failures(cert), 0u);
  EXPECT_EQ(ambient_ca_certificate_last_error(cert, nullptr, 0), 0u);

  // The PEM pair: the leaf naming the identity (the fake CA has no
  // intermediates; its root is apart); the key matches.
  std::string chain = ChainPem(cert);
  std::string key = KeyPem(cert);
  ASSERT_EQ(chain.rfind("-----BEGIN CERTIFICATE-----", 0), 0u) << chain;
  EXPECT_EQ(chain.find("-----BEGIN CERTIFICATE-----", 10), std::string::npos) << chain;
  EXPECT_EQ(RootPem(cert), ca_pem_);
  ASSERT_EQ(key.rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);
  ambient_credentials* from_pem = nullptr;
  ASSERT_EQ(
      ambient_credentials_new_pem(chain.data(), chain.size(), key.data(), key.size(), &from_pem),
      nullptr);
  EXPECT_EQ(IdOf(from_pem), kId);
  EXPECT_EQ(ambient_credentials_not_after(from_pem), ambient_ca_certificate_not_after(cert));
  ambient_credentials_free(from_pem);
  // The credentials taken before the certificate arrived hold it now.
  EXPECT_EQ(IdOf(creds), kId);

  // A truncated copy reports the full length.
  char small[8];
  size_t len = 0;
  ASSERT_EQ(ambient_ca_certificate_chain_pem(cert, small, sizeof small, &len), nullptr);
  EXPECT_EQ(len, chain.size());
  EXPECT_EQ(std::string(small), chain.substr(0, 7));

  // The CA saw one request, for this identity, with the token and cluster id.
  std::vector<json> reqs = CaRequests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0]["identity"], kId);
  EXPECT_EQ(reqs[0]["auth"], "Bearer tok-1");
  EXPECT_EQ(reqs[0]["clusterid"], "cluster-7");

  // A second use of the identity shares the certificate: no new request.
  ambient_ca_certificate* again = nullptr;
  ASSERT_EQ(ambient_ca_client_acquire(client, kId, &again), nullptr);
  EXPECT_EQ(ambient_ca_certificate_state(again), AMBIENT_CA_AVAILABLE);
  EXPECT_EQ(ChainPem(again), chain);
  ambient_runtime_loop_run_for(loop_, 200);
  EXPECT_TRUE(CaRequests().empty());

  ambient_credentials_free(creds);
  ambient_ca_certificate_free(again);
  ambient_ca_certificate_free(cert);
  ambient_ca_client_free(client);
}

TEST_F(CapiCaClientTest, ValidityAskedForReachesTheCa) {
  ASSERT_EQ(ambient_ca_client_options_set_validity_s(opts_, 3600), nullptr);
  ambient_ca_client* client = nullptr;
  ASSERT_EQ(ambient_ca_client_new(loop_, opts_, &client), nullptr);
  ambient_ca_certificate* cert = nullptr;
  ASSERT_EQ(ambient_ca_client_acquire(client, kId, &cert), nullptr);
  ASSERT_TRUE(RunUntil([&] { return ambient_ca_certificate_state(cert) == AMBIENT_CA_AVAILABLE; }));
  int64_t now = time(nullptr);
  EXPECT_LE(ambient_ca_certificate_not_after(cert), now + 3600 + 120);
  EXPECT_GT(ambient_ca_certificate_not_after(cert), now + 3600 - 120);
  ambient_ca_certificate_free(cert);
  ambient_ca_client_free(client);
}

TEST_F(CapiCaClientTest, BadOptionsGiveClearErrors) {
  ambient_ca_client* client = nullptr;
  ambient_ca_client_options* empty = ambient_ca_client_options_new();
  ambient_error* err = ambient_ca_client_new(loop_, empty, &client);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Message(err), "CA client: no CA address set");
  EXPECT_EQ(client, nullptr);

  ASSERT_EQ(ambient_ca_client_options_set_address(empty, "no-port"), nullptr);
  err = ambient_ca_client_new(loop_, empty, &client);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_NE(Message(err).find("no-port"), std::string::npos);
  EXPECT_EQ(client, nullptr);

  ASSERT_EQ(ambient_ca_client_options_set_address(empty, "127.0.0.1:15012"), nullptr);
  std::string missing = dir_ + "/no-such-roots.pem";
  ASSERT_EQ(ambient_ca_client_options_set_roots_pem_file(empty, missing.c_str()), nullptr);
  err = ambient_ca_client_new(loop_, empty, &client);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_NOT_FOUND);
  EXPECT_NE(Message(err).find(missing), std::string::npos);
  EXPECT_EQ(client, nullptr);

  std::string junk = dir_ + "/junk.pem";
  WriteFile(junk, "not a certificate\n");
  ASSERT_EQ(ambient_ca_client_options_set_roots_pem_file(empty, junk.c_str()), nullptr);
  err = ambient_ca_client_new(loop_, empty, &client);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  ambient_ca_client_options_free(empty);

  EXPECT_EQ(Code(ambient_ca_client_options_set_address(opts_, nullptr)),
            AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Code(ambient_ca_client_options_set_timeout_ms(opts_, 0)), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Code(ambient_ca_client_options_set_validity_s(opts_, 0)), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Code(ambient_ca_client_options_set_cluster_id(opts_, "")),
            AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Code(ambient_ca_client_new(nullptr, opts_, &client)), AMBIENT_ERR_INVALID_ARGUMENT);

  ASSERT_EQ(ambient_ca_client_new(loop_, opts_, &client), nullptr);
  ambient_ca_certificate* cert = nullptr;
  err = ambient_ca_client_acquire(client, "", &cert);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Message(err), "empty SPIFFE ID");
  EXPECT_EQ(cert, nullptr);
  err = ambient_ca_client_acquire(client, "https://cluster.local/ns/a/sa/b", &cert);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  EXPECT_EQ(cert, nullptr);
  EXPECT_EQ(Code(ambient_ca_client_acquire(client, nullptr, &cert)), AMBIENT_ERR_INVALID_ARGUMENT);
  // Nothing was asked of the CA.
  ambient_runtime_loop_run_for(loop_, 200);
  EXPECT_TRUE(CaRequests().empty());
  ambient_ca_client_free(client);
}

TEST_F(CapiCaClientTest, UnreachableCaReportsTheFailure) {
  // A port nothing listens on (the fake's, once it is gone).
  istiod_ = ambient::test_support::Child();
  ASSERT_EQ(ambient_ca_client_options_set_timeout_ms(opts_, 300), nullptr);
  ambient_ca_client* client = nullptr;
  ASSERT_EQ(ambient_ca_client_new(loop_, opts_, &client), nullptr);
  ambient_ca_certificate* cert = nullptr;
  ASSERT_EQ(ambient_ca_client_acquire(client, kId, &cert), nullptr);
  ASSERT_TRUE(RunUntil([&] { return ambient_ca_certificate_failures(cert) >= 1; }));
  EXPECT_EQ(ambient_ca_certificate_state(cert), AMBIENT_CA_UNAVAILABLE);
  size_t len = ambient_ca_certificate_last_error(cert, nullptr, 0);
  std::string why(len + 1, '\0');
  ambient_ca_certificate_last_error(cert, why.data(), why.size());
  why.resize(len);
  EXPECT_FALSE(why.empty());
  EXPECT_EQ(ambient_ca_certificate_not_after(cert), 0);
  ambient_ca_certificate_free(cert);
  ambient_ca_client_free(client);
}

TEST_F(CapiCaClientTest, FreeingTheClientWithAcquisitionsOutIsSafe) {
  ambient_ca_client* client = nullptr;
  ASSERT_EQ(ambient_ca_client_new(loop_, opts_, &client), nullptr);
  ambient_ca_certificate* held = nullptr;
  ambient_ca_certificate* pending = nullptr;
  ASSERT_EQ(ambient_ca_client_acquire(client, kId, &held), nullptr);
  ASSERT_TRUE(RunUntil([&] { return ambient_ca_certificate_state(held) == AMBIENT_CA_AVAILABLE; }));
  // A second identity whose fetch is still in flight when the client goes.
  ASSERT_EQ(ambient_ca_client_acquire(client, "spiffe://cluster.local/ns/ns1/sa/sa-b", &pending),
            nullptr);
  ambient_credentials* creds = nullptr;
  ASSERT_EQ(ambient_ca_certificate_get1_credentials(held, &creds), nullptr);
  int64_t not_after = ambient_ca_certificate_not_after(held);
  ambient_ca_client_free(client);
  // The handles keep their last certificate and report it.
  EXPECT_EQ(ambient_ca_certificate_state(held), AMBIENT_CA_AVAILABLE);
  EXPECT_EQ(ambient_ca_certificate_not_after(held), not_after);
  EXPECT_EQ(ambient_ca_certificate_state(pending), AMBIENT_CA_UNAVAILABLE);
  EXPECT_EQ(RootPem(held), "error: the CA client was freed");
  EXPECT_EQ(KeyPem(held).rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);
  EXPECT_EQ(IdOf(creds), kId);
  ambient_runtime_loop_run_for(loop_, 100);
  ambient_ca_certificate_free(held);
  ambient_ca_certificate_free(pending);
  ambient_runtime_loop_run_for(loop_, 50);
  EXPECT_EQ(IdOf(creds), kId);
  ambient_credentials_free(creds);
}

// --- A node proxy fed by the fake istiod through ambient_node_proxy_options_set_xds.

constexpr char kAddressType[] = "type.googleapis.com/istio.workload.Address";

json Pod(const std::string& name, const std::string& sa, const std::string& node,
         const std::string& b64_ip) {
  return {{"workload",
           {{"uid", "Kubernetes//Pod/ns1/" + name},
            {"name", name},
            {"namespace", "ns1"},
            {"addresses", {b64_ip}},
            {"tunnelProtocol", "HBONE"},
            {"serviceAccount", sa},
            {"node", node}}}};
}

class CapiXdsNodeProxyTest : public CapiCaClientTest {
 protected:
  void SetUp() override {
    CapiCaClientTest::SetUp();
    if (HasFatalFailure()) return;
    // istiod's state: pod a (sa-a) on this node, pod c (sa-c) on another.
    json res = json::array();
    res.push_back({"Kubernetes//Pod/ns1/a", "v1", "workload.Address",
                   Pod("a", "sa-a", "node-1", "xhIACg==")});
    res.push_back({"Kubernetes//Pod/ns1/c", "v1", "workload.Address",
                   Pod("c", "sa-c", "node-2", "xhIADA==")});
    Command({{"set_messages",
              {{"type", kAddressType}, {"any_type", kAddressType}, {"resources", res}}}});
    xds_ = ambient_xds_options_new();
    ASSERT_NE(xds_, nullptr);
    std::string address = absl::StrCat("127.0.0.1:", port_);
    ASSERT_EQ(ambient_xds_options_set_address(xds_, address.c_str()), nullptr);
    ASSERT_EQ(ambient_xds_options_set_token_file(xds_, (dir_ + "/istio-token").c_str()), nullptr);
    ASSERT_EQ(ambient_xds_options_set_cluster_id(xds_, "cluster-7"), nullptr);
    ASSERT_EQ(ambient_xds_options_set_pod(xds_, "ztunnel-x", "istio-system"), nullptr);
    ASSERT_EQ(ambient_xds_options_set_instance_ip(xds_, "198.18.0.5"), nullptr);
    ASSERT_EQ(ambient_xds_options_add_metadata(xds_, "OWNER", "capi-test"), nullptr);
    npo_ = ambient_node_proxy_options_new();
    ASSERT_NE(npo_, nullptr);
  }
  void TearDown() override {
    ambient_node_proxy_options_free(npo_);
    ambient_xds_options_free(xds_);
    CapiCaClientTest::TearDown();
  }

  ambient_xds_options* xds_ = nullptr;
  ambient_node_proxy_options* npo_ = nullptr;
};

TEST_F(CapiXdsNodeProxyTest, RunsFromIstiodAndIsReadyWithXdsAndCertificates) {
  // No node name yet: refused, options unchanged.
  ambient_error* err = ambient_node_proxy_options_set_xds(npo_, xds_);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Message(err), "xDS options: no node name set");
  ASSERT_EQ(ambient_xds_options_set_node_name(xds_, "node-1"), nullptr);
  ASSERT_EQ(ambient_node_proxy_options_set_xds(npo_, xds_), nullptr);
  ambient_xds_options_free(xds_);  // copied
  xds_ = nullptr;

  ambient_node_proxy* proxy = nullptr;
  ASSERT_EQ(ambient_node_proxy_new(loop_, npo_, &proxy), nullptr);
  EXPECT_EQ(ambient_node_proxy_ready(proxy), 0);
  // Both xDS types ACKed and the prefetched certificate of this node's pod
  // (sa-a; not c's, on node-2) issued by the CA.
  ASSERT_TRUE(RunUntil([&] { return ambient_node_proxy_ready(proxy) == 1; }));
  std::vector<json> reqs = CaRequests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0]["identity"], kId);
  EXPECT_EQ(reqs[0]["auth"], "Bearer tok-1");
  EXPECT_EQ(reqs[0]["clusterid"], "cluster-7");
  EXPECT_EQ(ambient_node_proxy_pod_count(proxy), 0u);
  ambient_node_proxy_free(proxy);
  ambient_runtime_loop_run_for(loop_, 50);
}

TEST_F(CapiXdsNodeProxyTest, ReportsTheXdsNodeToIstiod) {
  ASSERT_EQ(ambient_xds_options_set_node_name(xds_, "node-1"), nullptr);
  ASSERT_EQ(ambient_node_proxy_options_set_xds(npo_, xds_), nullptr);
  ambient_node_proxy* proxy = nullptr;
  ASSERT_EQ(ambient_node_proxy_new(loop_, npo_, &proxy), nullptr);
  // The first ADS request names the node as ztunnel does, with the metadata.
  json first;
  for (int i = 0; i < 200 && first.is_null(); ++i) {
    ambient_runtime_loop_run_for(loop_, 20);
    for (;;) {
      std::string line = ambient::test_support::ReadLine(istiod_.out(), 50);
      if (line.empty()) break;
      json j = json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.value("type", "") == kAddressType) {
        first = j;
        break;
      }
    }
  }
  ASSERT_FALSE(first.is_null());
  EXPECT_EQ(first["node"],
            "ztunnel~198.18.0.5~ztunnel-x.istio-system~istio-system.svc.cluster.local");
  EXPECT_EQ(first["metadata"]["OWNER"], "capi-test");
  EXPECT_EQ(first["metadata"]["NODE_NAME"], "node-1");
  EXPECT_EQ(first["clusterid"], "cluster-7");
  ambient_node_proxy_free(proxy);
}

TEST_F(CapiXdsNodeProxyTest, BadXdsOptionsGiveClearErrors) {
  ambient_xds_options* empty = ambient_xds_options_new();
  ambient_error* err = ambient_node_proxy_options_set_xds(npo_, empty);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Message(err), "xDS options: no address set");
  EXPECT_EQ(Code(ambient_xds_options_set_node_name(empty, "")), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Code(ambient_xds_options_add_metadata(empty, "", "v")), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Code(ambient_node_proxy_options_set_xds(npo_, nullptr)), AMBIENT_ERR_INVALID_ARGUMENT);

  // A malformed address is caught when the proxy is made.
  ASSERT_EQ(ambient_xds_options_set_address(empty, "no-port"), nullptr);
  ASSERT_EQ(ambient_xds_options_set_node_name(empty, "node-1"), nullptr);
  ASSERT_EQ(ambient_node_proxy_options_set_xds(npo_, empty), nullptr);
  ambient_node_proxy* proxy = nullptr;
  err = ambient_node_proxy_new(loop_, npo_, &proxy);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_NE(Message(err).find("no-port"), std::string::npos);
  EXPECT_EQ(proxy, nullptr);

  // A missing roots file, named.
  ASSERT_EQ(ambient_xds_options_set_address(empty, "127.0.0.1:15012"), nullptr);
  std::string missing = dir_ + "/no-roots.pem";
  ASSERT_EQ(ambient_xds_options_set_roots_pem_file(empty, missing.c_str()), nullptr);
  ASSERT_EQ(ambient_node_proxy_options_set_xds(npo_, empty), nullptr);
  err = ambient_node_proxy_new(loop_, npo_, &proxy);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_NOT_FOUND);
  EXPECT_NE(Message(err).find(missing), std::string::npos);
  EXPECT_EQ(proxy, nullptr);
  ambient_xds_options_free(empty);

  // xDS supplies the mesh: options that also carry workloads are refused.
  ambient_workload_info* w = ambient_workload_info_new();
  ASSERT_EQ(ambient_workload_info_set(w, AMBIENT_WORKLOAD_UID, "u1"), nullptr);
  ASSERT_EQ(ambient_workload_info_set(w, AMBIENT_WORKLOAD_NAME, "n1"), nullptr);
  ASSERT_EQ(ambient_workload_info_set(w, AMBIENT_WORKLOAD_NAMESPACE, "ns1"), nullptr);
  ASSERT_EQ(ambient_node_proxy_options_add_workload(npo_, w), nullptr);
  ambient_workload_info_free(w);
  ASSERT_EQ(ambient_xds_options_set_node_name(xds_, "node-1"), nullptr);
  ASSERT_EQ(ambient_node_proxy_options_set_xds(npo_, xds_), nullptr);
  err = ambient_node_proxy_new(loop_, npo_, &proxy);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_NE(Message(err).find("from istiod"), std::string::npos);
  EXPECT_EQ(proxy, nullptr);
}

}  // namespace
