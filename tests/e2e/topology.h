// Test topology for the end-to-end tests: a "node" netns and two pod netns
// (A and B), each pod joined to the node by a veth pair, the node routing
// between them. Addresses come from 198.18.0.0/15 and 2001:db8::/32 and live
// only inside these namespaces; nothing is added to the root namespace,
// nothing routes off the machine. The destructor deletes the namespaces (which removes the veths),
// whatever happened in between.
#ifndef AMBIENT_TESTS_E2E_TOPOLOGY_H_
#define AMBIENT_TESTS_E2E_TOPOLOGY_H_

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ambient::e2e {

inline constexpr char kNodeToA[] = "198.18.1.1";
inline constexpr char kPodA[] = "198.18.1.2";
inline constexpr char kNodeToB[] = "198.18.2.1";
inline constexpr char kPodB[] = "198.18.2.2";
inline constexpr char kNodeToA6[] = "2001:db8:1::1";
inline constexpr char kPodA6[] = "2001:db8:1::2";
inline constexpr char kNodeToB6[] = "2001:db8:2::1";
inline constexpr char kPodB6[] = "2001:db8:2::2";

class Topology {
 public:
  Topology() {
    static std::atomic<int> counter{0};
    std::string base = absl::StrCat("ambient-test-", getpid(), "-e2e", counter++);
    node_ = base + "-node";
    a_ = base + "-a";
    b_ = base + "-b";
    for (const std::string& ns : {node_, a_, b_}) {
      if (!Run(absl::StrCat("ip netns add ", ns))) return;
      created_.push_back(ns);
      if (!Run(absl::StrCat("ip -n ", ns, " link set lo up"))) return;
      // No duplicate address detection on the links made below (their
      // link-local addresses would stay tentative for a second or two).
      if (!Run(absl::StrCat("ip netns exec ", ns,
                            " sysctl -q -w net.ipv6.conf.default.accept_dad=0"))) {
        return;
      }
    }
    ok_ =
        Pod(a_, "va", kNodeToA, kPodA, kNodeToA6, kPodA6) &&
        Pod(b_, "vb", kNodeToB, kPodB, kNodeToB6, kPodB6) &&
        Run(absl::StrCat("ip netns exec ", node_, " sysctl -q -w net.ipv4.ip_forward=1")) &&
        Run(absl::StrCat("ip netns exec ", node_, " sysctl -q -w net.ipv6.conf.all.forwarding=1"));
  }
  ~Topology() {
    for (const std::string& ns : created_) Run(absl::StrCat("ip netns del ", ns));
  }
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  bool ok() const { return ok_; }
  const std::string& node() const { return node_; }
  const std::string& a() const { return a_; }
  const std::string& b() const { return b_; }

 private:
  static bool Run(const std::string& cmd) {
    return std::system(absl::StrCat(cmd, " >/dev/null 2>&1").c_str()) == 0;
  }
  // Pod makes a veth `node_if` in the node netns whose peer is eth0 in `pod`,
  // with IPv4 /24 and IPv6 /64 addresses (no duplicate address detection, so
  // they are usable at once).
  bool Pod(const std::string& pod, const char* node_if, const char* node_ip, const char* pod_ip,
           const char* node_ip6, const char* pod_ip6) {
    return Run(absl::StrCat("ip -n ", node_, " link add ", node_if,
                            " type veth peer name eth0 netns ", pod)) &&
           Run(absl::StrCat("ip -n ", node_, " addr add ", node_ip, "/24 dev ", node_if)) &&
           Run(absl::StrCat("ip -n ", node_, " link set ", node_if, " up")) &&
           Run(absl::StrCat("ip -n ", pod, " addr add ", pod_ip, "/24 dev eth0")) &&
           Run(absl::StrCat("ip -n ", pod, " link set eth0 up")) &&
           Run(absl::StrCat("ip -n ", pod, " route add default via ", node_ip)) &&
           Run(absl::StrCat("ip -n ", node_, " addr add ", node_ip6, "/64 dev ", node_if,
                            " nodad")) &&
           Run(absl::StrCat("ip -n ", pod, " addr add ", pod_ip6, "/64 dev eth0 nodad")) &&
           Run(absl::StrCat("ip -n ", pod, " route add default via ", node_ip6));
  }

  std::string node_, a_, b_;
  std::vector<std::string> created_;
  bool ok_ = false;
};

}  // namespace ambient::e2e

#endif  // AMBIENT_TESTS_E2E_TOPOLOGY_H_
