// The node proxy through the C ABI fed by istiod (ambient_node_proxy_options_set_xds):
// the fake istiod (tests/xds/fake_istiod.py --ca --state) serves pods
// client (198.18.1.2) and server (198.18.2.2) on node-1; the pods are handed
// over with Kubernetes pod uids (not the xDS uids) and matched by
// namespace/name, get CA-issued certificates, and talk over HBONE (root).
#include <unistd.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "ambient/ambient.h"
#include "e2e/capi_log.h"
#include "e2e/pod_apps.h"
#include "e2e/topology.h"
#include "gtest/gtest.h"
#include "support/privileged.h"
#include "support/process.h"
#include "support/test_pki.h"
#include "xds/istiod_protos.h"

namespace ambient::e2e {
namespace {

using json = nlohmann::json;

constexpr char kAddressType[] = "type.googleapis.com/istio.workload.Address";
constexpr char kClientId[] = "spiffe://cluster.local/ns/demo/sa/client";

json Pod(const std::string& name, const std::string& b64_ip) {
  return {"Kubernetes//Pod/demo/" + name,
          "v1",
          "workload.Address",
          {{"workload",
            {{"uid", "Kubernetes//Pod/demo/" + name},
             {"name", name},
             {"namespace", "demo"},
             {"addresses", {b64_ip}},
             {"tunnelProtocol", "HBONE"},
             {"serviceAccount", name},
             {"node", "node-1"}}}}};
}

void WriteFile(const std::string& path, const std::string& text) {
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr) << path;
  fwrite(text.data(), 1, text.size(), f);
  fclose(f);
}

TEST(NodeProxyCapiXdsTest, PodsFromIstiodTalkOverHboneWithCaCertificates) {
  AMBIENT_REQUIRE_ROOT();
  char dir_template[] = "/tmp/ambient-capi-xds-e2e-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string dir = dir_template;
  ASSERT_EQ(xds::test_istiod::GenerateProtos(dir), "");
  int64_t now = absl::ToUnixSeconds(absl::Now());
  test_support::CertSpec ca_spec = test_support::CaSpec("cluster.local");
  ca_spec.not_before = now - 3600;
  ca_spec.not_after = now + 86400 * 3;
  test_support::Issued ca = test_support::Issue(ca_spec);
  WriteFile(dir + "/ca-cert.pem", ca.CertPem());
  WriteFile(dir + "/ca-key.pem", ca.KeyPem());
  test_support::Child istiod = test_support::Child::Spawn(
      {"/usr/bin/python3", AMBIENT_SOURCE_DIR "/tests/xds/fake_istiod.py", dir, "--ca",
       dir + "/ca-cert.pem", dir + "/ca-key.pem", "--state"});
  int port = 0;
  std::string first = test_support::ReadLine(istiod.out(), 20000);
  ASSERT_TRUE(absl::SimpleAtoi(first, &port) && port > 0) << first;
  json set = {{"set_messages",
               {{"type", kAddressType},
                {"any_type", kAddressType},
                {"resources", {Pod("client", "xhIBAg=="), Pod("server", "xhICAg==")}}}}};
  std::string line = set.dump() + "\n";
  ASSERT_EQ(write(istiod.in(), line.data(), line.size()), static_cast<ssize_t>(line.size()));
  // The fake's request lines are not read here: keep its stdout from filling.
  std::thread drain([fd = istiod.out()] { test_support::Drain(fd, 60000); });

  Topology topo;
  ASSERT_TRUE(topo.ok());
  ambient_netns* a = nullptr;
  ambient_netns* b = nullptr;
  ASSERT_EQ(Code(ambient_netns_open(topo.a().c_str(), &a)), AMBIENT_OK);
  ASSERT_EQ(Code(ambient_netns_open(topo.b().c_str(), &b)), AMBIENT_OK);
  ambient_redirect_config* rules = ambient_redirect_config_new();
  ASSERT_EQ(Code(ambient_redirect_apply(rules, a)), AMBIENT_OK);
  ASSERT_EQ(Code(ambient_redirect_apply(rules, b)), AMBIENT_OK);

  ambient_xds_options* x = ambient_xds_options_new();
  std::string address = absl::StrCat("127.0.0.1:", port);
  ASSERT_EQ(Code(ambient_xds_options_set_address(x, address.c_str())), AMBIENT_OK);
  ASSERT_EQ(Code(ambient_xds_options_set_node_name(x, "node-1")), AMBIENT_OK);
  ambient_node_proxy_options* o = ambient_node_proxy_options_new();
  ASSERT_EQ(Code(ambient_node_proxy_options_set_xds(o, x)), AMBIENT_OK);
  ambient_xds_options_free(x);
  Log log;
  ambient_node_proxy_options_set_log(o, &Log::Fn, &log);
  ambient_runtime_loop* loop = nullptr;
  ASSERT_EQ(Code(ambient_runtime_loop_new(&loop)), AMBIENT_OK);
  ambient_node_proxy* p = nullptr;
  ASSERT_EQ(Code(ambient_node_proxy_new(loop, o, &p)), AMBIENT_OK);
  ambient_node_proxy_options_free(o);
  for (int i = 0; i < 500 && ambient_node_proxy_ready(p) == 0; ++i) {
    ambient_runtime_loop_run_for(loop, 20);
  }
  ASSERT_EQ(ambient_node_proxy_ready(p), 1) << log.All();

  // Kubernetes pod uids, as a node agent hands them over: matched by
  // namespace and name among node-1's xDS workloads.
  for (auto [uid, name, ns] : {std::tuple{"k8s-uid-a", "client", a}, {"k8s-uid-b", "server", b}}) {
    ambient_workload_info* w = ambient_workload_info_new();
    ASSERT_EQ(Code(ambient_workload_info_set(w, AMBIENT_WORKLOAD_UID, uid)), AMBIENT_OK);
    ASSERT_EQ(Code(ambient_workload_info_set(w, AMBIENT_WORKLOAD_NAME, name)), AMBIENT_OK);
    ASSERT_EQ(Code(ambient_workload_info_set(w, AMBIENT_WORKLOAD_NAMESPACE, "demo")), AMBIENT_OK);
    EXPECT_EQ(Code(ambient_node_proxy_add_pod(p, w, ns)), AMBIENT_OK) << name << log.All();
    ambient_workload_info_free(w);
  }
  EXPECT_EQ(ambient_node_proxy_pod_count(p), 2u);

  std::thread runner([loop] { ambient_runtime_loop_run(loop); });
  auto in = [](ambient_netns* ns) -> SocketMaker {
    return [ns](int family) { return ambient_netns_socket(ns, family, SOCK_STREAM, 0); };
  };
  {
    AppServer app(in(b), kPodB, 9080);
    ASSERT_TRUE(app.ok());
    EXPECT_EQ(Exchange(in(a), kPodB, 9080, "from istiod"),
              absl::StrCat("pong from ", kPodB, ": from istiod"));
  }
  std::string access;
  for (int i = 0; i < 500 && access.empty(); ++i) {
    access = log.Find({"access connection complete", "direction=\"inbound\"", kClientId});
    if (access.empty()) usleep(10000);
  }
  EXPECT_FALSE(access.empty()) << log.All();

  ambient_runtime_loop_stop(loop);
  runner.join();
  ambient_node_proxy_free(p);
  ambient_runtime_loop_run_for(loop, 10);
  ambient_runtime_loop_free(loop);
  ambient_error_free(ambient_redirect_delete(rules, a));
  ambient_error_free(ambient_redirect_delete(rules, b));
  ambient_redirect_config_free(rules);
  ambient_netns_free(a);
  ambient_netns_free(b);
  istiod = test_support::Child();
  drain.join();
  std::system(absl::StrCat("rm -rf ", dir).c_str());
}

}  // namespace
}  // namespace ambient::e2e
