// The netns C ABI as a C host sees it (through libambient.so).
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ambient/ambient.h"
#include "netns/test_util.h"
#include "support/privileged.h"

namespace {

using ambient::netns::testing::FdLeakCheck;

struct ErrorFree {
  void operator()(ambient_error* e) const { ambient_error_free(e); }
};
using ErrorPtr = std::unique_ptr<ambient_error, ErrorFree>;

// Pod is an ambient_workload_info of uid/name/namespace/service account
// (each unknown when NULL), freed with it.
struct Pod {
  ambient_workload_info* w = ambient_workload_info_new();
  Pod(const char* uid, const char* name, const char* ns, const char* sa) {
    EXPECT_EQ(ambient_workload_info_set(w, AMBIENT_WORKLOAD_UID, uid), nullptr);
    EXPECT_EQ(ambient_workload_info_set(w, AMBIENT_WORKLOAD_NAME, name), nullptr);
    EXPECT_EQ(ambient_workload_info_set(w, AMBIENT_WORKLOAD_NAMESPACE, ns), nullptr);
    EXPECT_EQ(ambient_workload_info_set(w, AMBIENT_WORKLOAD_SERVICE_ACCOUNT, sa), nullptr);
  }
  ~Pod() { ambient_workload_info_free(w); }
  Pod(const Pod&) = delete;
  Pod& operator=(const Pod&) = delete;
  operator const ambient_workload_info*() const { return w; }
};

TEST(NetnsCapi, NullsAndBadInputAreErrorsNotCrashes) {
  ambient_netns* ns = nullptr;
  ErrorPtr e(ambient_netns_open(nullptr, &ns));
  EXPECT_EQ(ambient_error_code(e.get()), AMBIENT_ERR_INVALID_ARGUMENT);
  e.reset(ambient_netns_open("/proc/self/status", &ns));
  EXPECT_EQ(ambient_error_code(e.get()), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ns, nullptr);
  e.reset(ambient_netns_open("ambient-no-such-ns", &ns));
  EXPECT_EQ(ambient_error_code(e.get()), AMBIENT_ERR_NOT_FOUND);
  e.reset(ambient_netns_open_fd(-1, &ns));
  EXPECT_EQ(ambient_error_code(e.get()), AMBIENT_ERR_INVALID_ARGUMENT);
  e.reset(ambient_netns_open_pid(0, &ns));
  EXPECT_EQ(ambient_error_code(e.get()), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_netns_free(nullptr);
  ambient_pod_listeners_free(nullptr);
  ambient_pod_listener_options_free(nullptr);
  ambient_zds_proxy_free(nullptr);
  ambient_zds_agent_free(nullptr);
  ambient_zds_proxy_options_free(nullptr);
  ambient_zds_agent_options_free(nullptr);
  EXPECT_EQ(ambient_netns_fd(nullptr), -1);
  EXPECT_EQ(ambient_netns_equal(nullptr, nullptr), 0);
  EXPECT_EQ(ambient_netns_socket(nullptr, AF_INET, SOCK_STREAM, 0), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ambient_pod_listeners_fd(nullptr, 0), AMBIENT_ERR_OUT_OF_RANGE);
  EXPECT_STREQ(ambient_listener_kind_name(99), "unknown");
  EXPECT_STREQ(ambient_listener_kind_name(AMBIENT_LISTENER_INBOUND_HBONE), "hbone");
  char buf[8];
  EXPECT_EQ(ambient_original_destination(-1, buf, sizeof(buf)) < 0, true);

  ambient_zds_proxy_options* po = ambient_zds_proxy_options_new();
  ASSERT_NE(po, nullptr);
  ambient_zds_proxy* proxy = nullptr;
  e.reset(ambient_zds_proxy_new(po, &proxy));  // no callbacks
  EXPECT_EQ(ambient_error_code(e.get()), AMBIENT_ERR_INVALID_ARGUMENT);
  e.reset(ambient_zds_proxy_options_set_socket_path(po, std::string(200, 'x').c_str()));
  EXPECT_EQ(ambient_error_code(e.get()), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(ambient_error_message(e.get()), "ZDS socket path must be 1-107 bytes");
  e.reset(ambient_zds_proxy_options_set_socket_path(po, std::string(108, 'x').c_str()));
  EXPECT_EQ(ambient_error_code(e.get()), AMBIENT_ERR_INVALID_ARGUMENT);
  e.reset(ambient_zds_proxy_options_set_socket_path(po, ""));
  EXPECT_EQ(ambient_error_code(e.get()), AMBIENT_ERR_INVALID_ARGUMENT);
  e.reset(ambient_zds_proxy_options_set_socket_path(po, std::string(107, 'x').c_str()));
  EXPECT_EQ(e.get(), nullptr);
  e.reset(ambient_zds_proxy_options_set_backoff(po, 0, 10));
  EXPECT_EQ(ambient_error_code(e.get()), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_zds_proxy_options_free(po);
}

struct Host {
  std::atomic<int> adds{0};
  std::atomic<int> removes{0};
  std::atomic<int> snapshots{0};
  std::atomic<int> listeners{0};
  std::vector<ambient_pod_listeners*> sets;  // proxy thread only
};

int OnAdd(void* user, const char* uid, const ambient_zds_workload* w, ambient_netns* netns,
          char* reason, size_t cap) {
  auto* h = static_cast<Host*>(user);
  if (std::string(uid) == "refuse-me") {
    snprintf(reason, cap, "pod %s is not welcome (%s)", uid, ambient_zds_workload_name(w));
    ambient_netns_free(netns);
    return 1;
  }
  ambient_pod_listeners* set = nullptr;
  ambient_error* e = ambient_pod_listeners_open(netns, nullptr, &set);
  ambient_netns_free(netns);
  if (e != nullptr) {
    snprintf(reason, cap, "%s", ambient_error_message(e));
    ambient_error_free(e);
    return 1;
  }
  h->listeners += static_cast<int>(ambient_pod_listeners_count(set));
  h->sets.push_back(set);
  h->adds++;
  return 0;
}

void OnRemove(void* user, const char*) { static_cast<Host*>(user)->removes++; }

void OnEvent(void* user, ambient_zds_event event, const char*) {
  if (event == AMBIENT_ZDS_SNAPSHOT_COMPLETE) static_cast<Host*>(user)->snapshots++;
}

TEST(NetnsCapi, AgentAndProxyThroughTheCAbi) {
  AMBIENT_REQUIRE_ROOT();
  FdLeakCheck leak_check;
  const std::string path = "/tmp/ambient-capi-zds-" + std::to_string(getpid()) + ".sock";
  ambient_netns* pod = nullptr;
  ASSERT_EQ(ambient_netns_new_unnamed(&pod), nullptr);
  ASSERT_EQ(ambient_netns_loopback_up(pod), nullptr);
  ambient_netns* again = nullptr;
  ASSERT_EQ(ambient_netns_open_fd(ambient_netns_fd(pod), &again), nullptr);
  EXPECT_EQ(ambient_netns_equal(pod, again), 1);
  ambient_netns* here = nullptr;
  ASSERT_EQ(ambient_netns_open_current(&here), nullptr);
  EXPECT_EQ(ambient_netns_equal(pod, here), 0);
  uint64_t dev = 0, ino = 0;
  ambient_netns_id(pod, &dev, &ino);
  EXPECT_NE(ino, 0u);

  int ran = 0;
  ErrorPtr e(ambient_netns_run(
      pod, [](void* p) { return *static_cast<int*>(p) = 42; }, &ran, nullptr));
  EXPECT_EQ(e, nullptr);
  EXPECT_EQ(ran, 42);
  int out = ambient_netns_outbound_socket(pod, AF_INET, 0x539);
  ASSERT_GE(out, 0);
  close(out);

  ambient_zds_agent_options* ao = ambient_zds_agent_options_new();
  ASSERT_EQ(ambient_zds_agent_options_set_socket_path(ao, path.c_str()), nullptr);
  ambient_zds_agent* agent = nullptr;
  ASSERT_EQ(ambient_zds_agent_new(ao, &agent), nullptr);
  ambient_zds_agent_options_free(ao);

  Host host;
  ambient_zds_proxy_options* po = ambient_zds_proxy_options_new();
  ASSERT_EQ(ambient_zds_proxy_options_set_socket_path(po, path.c_str()), nullptr);
  ambient_zds_proxy_options_set_callbacks(po, OnAdd, OnRemove, OnEvent, &host);
  ambient_zds_proxy* proxy = nullptr;
  ASSERT_EQ(ambient_zds_proxy_new(po, &proxy), nullptr);
  ambient_zds_proxy_options_free(po);
  ASSERT_EQ(ambient_zds_proxy_start(proxy), nullptr);
  e.reset(ambient_zds_proxy_start(proxy));
  EXPECT_EQ(ambient_error_code(e.get()), AMBIENT_ERR_FAILED_PRECONDITION);
  ASSERT_EQ(ambient_zds_agent_wait_for_proxies(agent, 1, 5000), nullptr);
  for (int i = 0; i < 200 && !ambient_zds_proxy_ready(proxy); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(ambient_zds_proxy_ready(proxy), 1);
  EXPECT_EQ(host.snapshots.load(), 1);

  e.reset(ambient_zds_agent_add(agent, Pod("pod-1", "one", "default", "sa"), pod));
  EXPECT_EQ(e, nullptr) << ambient_error_message(e.get());
  EXPECT_EQ(host.adds.load(), 1);
  EXPECT_EQ(host.listeners.load(), 7);
  EXPECT_EQ(ambient_zds_proxy_workload_count(proxy), 1u);
  e.reset(ambient_zds_agent_add(agent, Pod("refuse-me", "two", nullptr, nullptr), pod));
  EXPECT_EQ(ambient_error_code(e.get()), AMBIENT_ERR_ABORTED);
  EXPECT_NE(std::string(ambient_error_message(e.get())).find("is not welcome (two)"),
            std::string::npos)
      << ambient_error_message(e.get());
  e.reset(ambient_zds_agent_add(agent, Pod("", nullptr, nullptr, nullptr), pod));
  EXPECT_EQ(ambient_error_code(e.get()), AMBIENT_ERR_INVALID_ARGUMENT);
  e.reset(ambient_zds_agent_add(agent, nullptr, pod));
  EXPECT_EQ(ambient_error_code(e.get()), AMBIENT_ERR_INVALID_ARGUMENT);
  e.reset(ambient_zds_agent_del(agent, "pod-1"));
  EXPECT_EQ(e, nullptr);
  EXPECT_EQ(host.removes.load(), 1);
  EXPECT_EQ(ambient_zds_agent_proxy_count(agent), 1u);

  ambient_zds_proxy_free(proxy);
  ambient_zds_agent_free(agent);
  for (ambient_pod_listeners* s : host.sets) ambient_pod_listeners_free(s);
  ambient_netns_free(pod);
  ambient_netns_free(again);
  ambient_netns_free(here);
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "agent left its socket file behind";
}

TEST(NetnsCapi, ListenerSetAccessors) {
  AMBIENT_REQUIRE_ROOT();
  ambient_netns* pod = nullptr;
  ASSERT_EQ(ambient_netns_new_unnamed(&pod), nullptr);
  ambient_pod_listener_options* o = ambient_pod_listener_options_new();
  ambient_pod_listener_options_set_dns(o, 0);
  ambient_pod_listener_options_set_ports(o, 25001, 25006, 25008, 25053);
  ambient_pod_listener_options_set_transparency(o, AMBIENT_TRANSPARENT_OFF);
  ambient_pod_listeners* set = nullptr;
  ASSERT_EQ(ambient_pod_listeners_open(pod, o, &set), nullptr);
  ASSERT_EQ(ambient_pod_listeners_count(set), 3u);
  char addr[64];
  EXPECT_EQ(ambient_pod_listeners_address(set, 2, addr, sizeof(addr)), 10);
  EXPECT_STREQ(addr, "[::]:25008");
  EXPECT_EQ(ambient_pod_listeners_kind(set, 2), AMBIENT_LISTENER_INBOUND_HBONE);
  EXPECT_EQ(ambient_pod_listeners_address(set, 2, addr, 5), AMBIENT_ERR_OUT_OF_RANGE);
  EXPECT_EQ(ambient_pod_listeners_kind(set, 3), AMBIENT_ERR_OUT_OF_RANGE);
  int fd = ambient_pod_listeners_fd(set, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in6 where{};
  EXPECT_EQ(ambient_original_destination(fd, &where, sizeof(where)),
            static_cast<int>(sizeof(sockaddr_in6)));
  EXPECT_EQ(ntohs(where.sin6_port), 25001);
  EXPECT_EQ(ambient_original_destination(fd, &where, 4), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_pod_listeners_free(set);
  ambient_pod_listener_options_free(o);
  ambient_netns_free(pod);
}

}  // namespace
