// The node proxy through the C ABI (libambient, as a C host links it):
// option checks without privileges, and pod A -> pod B over HBONE with pods
// added by hand, and the DNS proxy in a pod (root).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "ambient/ambient.h"
#include "e2e/capi_log.h"
#include "e2e/pod_apps.h"
#include "e2e/topology.h"
#include "gtest/gtest.h"
#include "hbone/test_pki.h"
#include "support/privileged.h"

namespace ambient::e2e {
namespace {

constexpr char kClientId[] = "spiffe://cluster.local/ns/demo/sa/client";
constexpr char kServerId[] = "spiffe://cluster.local/ns/demo/sa/server";

// Code returns the error's code and frees it.
struct OptionsDeleter {
  void operator()(ambient_node_proxy_options* o) const { ambient_node_proxy_options_free(o); }
};
using Options = std::unique_ptr<ambient_node_proxy_options, OptionsDeleter>;

// Workload is an ambient_workload_info of uid/name/namespace/service account
// (each left unknown when NULL) and `addresses`, freed with it.
struct Workload {
  ambient_workload_info* w = ambient_workload_info_new();
  Workload(const char* uid, const char* name, const char* ns, const char* sa,
           std::vector<const char*> addresses = {}) {
    EXPECT_EQ(ambient_workload_info_set(w, AMBIENT_WORKLOAD_UID, uid), nullptr);
    EXPECT_EQ(ambient_workload_info_set(w, AMBIENT_WORKLOAD_NAME, name), nullptr);
    EXPECT_EQ(ambient_workload_info_set(w, AMBIENT_WORKLOAD_NAMESPACE, ns), nullptr);
    EXPECT_EQ(ambient_workload_info_set(w, AMBIENT_WORKLOAD_SERVICE_ACCOUNT, sa), nullptr);
    for (const char* ip : addresses) EXPECT_EQ(ambient_workload_info_add_address(w, ip), nullptr);
  }
  ~Workload() { ambient_workload_info_free(w); }
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;
  operator const ambient_workload_info*() const { return w; }
};

TEST(NodeProxyCapiTest, BadOptionsAreRefusedAndNullIsSafe) {
  Options o(ambient_node_proxy_options_new());
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(Code(ambient_node_proxy_options_add_workload(
                o.get(), Workload("a", "client", "demo", "client", {"198.18.1.2"}))),
            AMBIENT_OK);
  EXPECT_EQ(Code(ambient_node_proxy_options_add_workload(
                o.get(), Workload("b", "x", "demo", nullptr, {"198.18.1.999"}))),
            AMBIENT_ERR_INVALID_ARGUMENT);
  // The address belongs to "a".
  EXPECT_EQ(Code(ambient_node_proxy_options_add_workload(
                o.get(), Workload("b", "x", "demo", nullptr, {"198.18.1.2"}))),
            AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Code(ambient_node_proxy_options_add_workload(o.get(),
                                                         Workload(nullptr, "x", "demo", nullptr))),
            AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Code(ambient_node_proxy_options_add_workload(o.get(), nullptr)),
            AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Code(ambient_node_proxy_options_add_trust_bundle_pem(o.get(), "cluster.local", "x", 1)),
            AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Code(ambient_node_proxy_options_set_svid_pem(o.get(), "a", "no", 2, "pem", 3)),
            AMBIENT_ERR_INVALID_ARGUMENT);
  const char json[] = "{\"policies\": [{\"name\": 1}]}";
  EXPECT_EQ(Code(ambient_node_proxy_options_set_policies_json(o.get(), json, sizeof(json) - 1)),
            AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_node_proxy* p = nullptr;
  EXPECT_EQ(Code(ambient_node_proxy_new(nullptr, o.get(), &p)), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(ambient_node_proxy_remove_pod(nullptr, "a"), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ambient_node_proxy_pod_count(nullptr), 0u);
  ambient_node_proxy_free(nullptr);
  ambient_node_proxy_options_free(nullptr);
  // DNS upstreams: bad entries are named; NULL options refused.
  ambient_error* err = ambient_node_proxy_options_set_dns(o.get(), "192.0.2.1:53,dns.example");
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(ambient_error_message(err), "dns.example"))
      << ambient_error_message(err);
  ambient_error_free(err);
  EXPECT_EQ(Code(ambient_node_proxy_options_set_dns(nullptr, "192.0.2.1")),
            AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Code(ambient_node_proxy_options_set_dns(o.get(), "192.0.2.1:53,[2001:db8::1]:5353")),
            AMBIENT_OK);
  char buf[8] = "x";
  EXPECT_EQ(ambient_node_proxy_dns_metrics(nullptr, buf, sizeof(buf)), 0u);
  EXPECT_STREQ(buf, "");
}

TEST(NodeProxyCapiTest, UnknownPodAndMissingNetnsAreRefused) {
  ambient_runtime_loop* loop = nullptr;
  ASSERT_EQ(Code(ambient_runtime_loop_new(&loop)), AMBIENT_OK);
  Options o(ambient_node_proxy_options_new());
  ambient_node_proxy* p = nullptr;
  ASSERT_EQ(Code(ambient_node_proxy_new(loop, o.get(), &p)), AMBIENT_OK);
  ambient_netns* self = nullptr;
  ASSERT_EQ(Code(ambient_netns_open_current(&self)), AMBIENT_OK);
  Workload nobody("nobody", "x", "y", nullptr);
  EXPECT_EQ(Code(ambient_node_proxy_add_pod(p, nobody, self)), AMBIENT_ERR_NOT_FOUND);
  EXPECT_EQ(Code(ambient_node_proxy_add_pod(p, nullptr, self)), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Code(ambient_node_proxy_add_pod(p, Workload(nullptr, "x", "y", nullptr), self)),
            AMBIENT_ERR_INVALID_ARGUMENT);  // no uid
  EXPECT_EQ(Code(ambient_node_proxy_add_pod(p, nobody, nullptr)), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Code(ambient_node_proxy_add_pod(nullptr, nobody, self)), AMBIENT_ERR_INVALID_ARGUMENT);
  // A descriptor that is no netns never becomes a handle, so it cannot reach add_pod.
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  ambient_netns* not_netns = nullptr;
  EXPECT_EQ(Code(ambient_netns_open_fd(pipe_fds[0], &not_netns)), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(not_netns, nullptr);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  ambient_netns_free(self);
  EXPECT_EQ(ambient_node_proxy_pod_count(p), 0u);
  ambient_node_proxy_free(p);
  ambient_runtime_loop_free(loop);
}

TEST(NodeProxyCapiTest, PodToPodOverHbone) {
  AMBIENT_REQUIRE_ROOT();
  Topology topo;
  ASSERT_TRUE(topo.ok());
  ambient_netns* a = nullptr;
  ambient_netns* b = nullptr;
  ASSERT_EQ(Code(ambient_netns_open(topo.a().c_str(), &a)), AMBIENT_OK);
  ASSERT_EQ(Code(ambient_netns_open(topo.b().c_str(), &b)), AMBIENT_OK);
  ambient_redirect_config* rules = ambient_redirect_config_new();
  ASSERT_NE(rules, nullptr);
  ASSERT_EQ(Code(ambient_redirect_apply(rules, a)), AMBIENT_OK);
  ASSERT_EQ(Code(ambient_redirect_apply(rules, b)), AMBIENT_OK);

  hbone::testing::TestCa ca;
  Options o(ambient_node_proxy_options_new());
  ASSERT_EQ(Code(ambient_node_proxy_options_add_workload(
                o.get(), Workload("pod-a", "client", "demo", "client", {kPodA}))),
            AMBIENT_OK);
  ASSERT_EQ(Code(ambient_node_proxy_options_add_workload(
                o.get(), Workload("pod-b", "server", "demo", "server", {kPodB}))),
            AMBIENT_OK);
  std::string roots = ca.CaPem();
  ASSERT_EQ(Code(ambient_node_proxy_options_add_trust_bundle_pem(o.get(), "cluster.local",
                                                                 roots.data(), roots.size())),
            AMBIENT_OK);
  for (auto [uid, id] : {std::pair{"pod-a", kClientId}, std::pair{"pod-b", kServerId}}) {
    hbone::testing::KeyAndCert kc = ca.Leaf(id);
    std::string cert = hbone::testing::TestCa::CertPem(kc);
    std::string key = hbone::testing::TestCa::KeyPem(kc);
    ASSERT_EQ(Code(ambient_node_proxy_options_set_svid_pem(o.get(), uid, cert.data(), cert.size(),
                                                           key.data(), key.size())),
              AMBIENT_OK);
  }
  Log log;
  ambient_node_proxy_options_set_log(o.get(), &Log::Fn, &log);

  ambient_runtime_loop* loop = nullptr;
  ASSERT_EQ(Code(ambient_runtime_loop_new(&loop)), AMBIENT_OK);
  ambient_node_proxy* p = nullptr;
  ASSERT_EQ(Code(ambient_node_proxy_new(loop, o.get(), &p)), AMBIENT_OK);
  o.reset();  // the proxy keeps its own copy
  ASSERT_EQ(Code(ambient_node_proxy_add_pod(p, Workload("pod-a", nullptr, nullptr, nullptr), a)),
            AMBIENT_OK)
      << log.All();
  ASSERT_EQ(Code(ambient_node_proxy_add_pod(p, Workload("pod-b", "server", "demo", nullptr), b)),
            AMBIENT_OK)
      << log.All();
  EXPECT_EQ(ambient_node_proxy_pod_count(p), 2u);
  // Another handle on pod-a's namespace is the same netns: adding again does nothing.
  ambient_netns* a_again = nullptr;
  ASSERT_EQ(Code(ambient_netns_open(topo.a().c_str(), &a_again)), AMBIENT_OK);
  EXPECT_EQ(
      Code(ambient_node_proxy_add_pod(p, Workload("pod-a", nullptr, nullptr, nullptr), a_again)),
      AMBIENT_OK)
      << log.All();
  ambient_netns_free(a_again);
  EXPECT_EQ(ambient_node_proxy_pod_count(p), 2u);

  std::thread runner([loop] { ambient_runtime_loop_run(loop); });
  auto in = [](ambient_netns* ns) -> SocketMaker {
    return [ns](int family) { return ambient_netns_socket(ns, family, SOCK_STREAM, 0); };
  };
  {
    AppServer app(in(b), kPodB, 9080);
    ASSERT_TRUE(app.ok());
    EXPECT_EQ(Exchange(in(a), kPodB, 9080, "over the C ABI"),
              absl::StrCat("pong from ", kPodB, ": over the C ABI"));
  }
  std::string line;
  for (int i = 0; i < 500 && line.empty(); ++i) {
    line = log.Find({"access connection complete", "direction=\"inbound\"", kClientId});
    if (line.empty()) usleep(10000);
  }
  EXPECT_FALSE(line.empty()) << log.All();

  ambient_runtime_loop_stop(loop);
  runner.join();
  EXPECT_EQ(ambient_node_proxy_remove_pod(p, "pod-b"), 1);
  EXPECT_EQ(ambient_node_proxy_remove_pod(p, "pod-b"), 0);
  EXPECT_EQ(ambient_node_proxy_pod_count(p), 1u);
  ambient_node_proxy_free(p);
  ambient_runtime_loop_run_for(loop, 10);
  ambient_runtime_loop_free(loop);
  ambient_error_free(ambient_redirect_delete(rules, a));
  ambient_error_free(ambient_redirect_delete(rules, b));
  ambient_redirect_config_free(rules);
  ambient_netns_free(a);
  ambient_netns_free(b);
}

// A DNS query for `name` (A, RD) with `id`, as a stub resolver sends it.
std::string DnsQuery(uint16_t id, const std::string& name) {
  std::string q = {
      static_cast<char>(id >> 8), static_cast<char>(id & 0xff), 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    q.push_back(static_cast<char>(label.size()));
    q.append(label.data(), label.size());
  }
  q.append("\x00\x00\x01\x00\x01", 5);
  return q;
}

// RecvWithin waits up to 3 s for a datagram on `fd`; "" on timeout.
std::string RecvWithin(int fd, sockaddr_storage* from = nullptr) {
  pollfd pfd{fd, POLLIN, 0};
  if (poll(&pfd, 1, 3000) != 1) return "";
  char buf[1500];
  socklen_t len = sizeof(sockaddr_storage);
  ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(from),
                       from != nullptr ? &len : nullptr);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

TEST(NodeProxyCapiTest, DnsProxyInThePodForwardsWithThePodsIdAndCounts) {
  AMBIENT_REQUIRE_ROOT();
  Topology topo;
  ASSERT_TRUE(topo.ok());
  ambient_netns* a = nullptr;
  ASSERT_EQ(Code(ambient_netns_open(topo.a().c_str(), &a)), AMBIENT_OK);

  // The upstream resolver: a UDP socket of this test on pod A's loopback
  // (the proxy forwards from inside the pod's netns).
  int upstream = ambient_netns_socket(a, AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(upstream, 0);
  sockaddr_in ua{};
  ua.sin_family = AF_INET;
  ua.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(upstream, reinterpret_cast<sockaddr*>(&ua), sizeof(ua)), 0);
  socklen_t ulen = sizeof(ua);
  ASSERT_EQ(getsockname(upstream, reinterpret_cast<sockaddr*>(&ua), &ulen), 0);

  hbone::testing::TestCa ca;
  Options o(ambient_node_proxy_options_new());
  ASSERT_EQ(Code(ambient_node_proxy_options_add_workload(
                o.get(), Workload("pod-a", "client", "demo", "client", {kPodA}))),
            AMBIENT_OK);
  std::string roots = ca.CaPem();
  ASSERT_EQ(Code(ambient_node_proxy_options_add_trust_bundle_pem(o.get(), "cluster.local",
                                                                 roots.data(), roots.size())),
            AMBIENT_OK);
  hbone::testing::KeyAndCert kc = ca.Leaf(kClientId);
  std::string cert = hbone::testing::TestCa::CertPem(kc);
  std::string key = hbone::testing::TestCa::KeyPem(kc);
  ASSERT_EQ(Code(ambient_node_proxy_options_set_svid_pem(o.get(), "pod-a", cert.data(), cert.size(),
                                                         key.data(), key.size())),
            AMBIENT_OK);
  std::string up = absl::StrCat("127.0.0.1:", ntohs(ua.sin_port));
  ASSERT_EQ(Code(ambient_node_proxy_options_set_dns(o.get(), up.c_str())), AMBIENT_OK);
  Log log;
  ambient_node_proxy_options_set_log(o.get(), &Log::Fn, &log);

  ambient_runtime_loop* loop = nullptr;
  ASSERT_EQ(Code(ambient_runtime_loop_new(&loop)), AMBIENT_OK);
  ambient_node_proxy* p = nullptr;
  ASSERT_EQ(Code(ambient_node_proxy_new(loop, o.get(), &p)), AMBIENT_OK);
  o.reset();
  ASSERT_EQ(Code(ambient_node_proxy_add_pod(p, Workload("pod-a", nullptr, nullptr, nullptr), a)),
            AMBIENT_OK)
      << log.All();
  std::thread runner([loop] { ambient_runtime_loop_run(loop); });

  // The pod's stub resolver asks the proxy on 15053.
  int client = ambient_netns_socket(a, AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(client, 0);
  sockaddr_in pa{};
  pa.sin_family = AF_INET;
  pa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  pa.sin_port = htons(15053);
  std::string q = DnsQuery(0xbeef, "outside.test");
  ASSERT_EQ(sendto(client, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&pa), sizeof(pa)),
            static_cast<ssize_t>(q.size()));
  sockaddr_storage from{};
  std::string forwarded = RecvWithin(upstream, &from);
  ASSERT_EQ(forwarded, q) << "the query reached the upstream unchanged (ID included); "
                          << log.All();
  // The upstream says NXDOMAIN; the pod gets it with its ID.
  std::string answer = forwarded;
  answer[2] = static_cast<char>(answer[2] | 0x80);  // QR
  answer[3] = static_cast<char>(0x80 | 3);          // RA, NXDOMAIN
  ASSERT_EQ(sendto(upstream, answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&from),
                   sizeof(sockaddr_in)),
            static_cast<ssize_t>(answer.size()));
  std::string got = RecvWithin(client);
  EXPECT_EQ(got, answer);

  std::string metrics(ambient_node_proxy_dns_metrics(p, nullptr, 0), '\0');
  ASSERT_GT(metrics.size(), 0u);
  ASSERT_EQ(ambient_node_proxy_dns_metrics(p, metrics.data(), metrics.size() + 1), metrics.size());
  EXPECT_TRUE(absl::StrContains(metrics, "istio_dns_requests_total{request_protocol=\"udp\"} 1\n"))
      << metrics;
  EXPECT_TRUE(
      absl::StrContains(metrics, "istio_dns_upstream_requests_total{request_protocol=\"udp\"} 1\n"))
      << metrics;

  ambient_runtime_loop_stop(loop);
  runner.join();
  // Releasing the pod closes 15053 with its other listeners.
  EXPECT_EQ(ambient_node_proxy_remove_pod(p, "pod-a"), 1);
  int probe = ambient_netns_socket(a, AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(probe, 0);
  EXPECT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&pa), sizeof(pa)), 0)
      << "15053 is still taken after the pod was released";
  close(probe);
  close(client);
  close(upstream);
  ambient_node_proxy_free(p);
  ambient_runtime_loop_run_for(loop, 10);
  ambient_runtime_loop_free(loop);
  ambient_netns_free(a);
}

}  // namespace
}  // namespace ambient::e2e
