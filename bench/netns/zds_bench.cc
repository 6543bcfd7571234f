// netns benchmark harness (needs root). Measures, in one run:
//   1. ZDS Add -> Ack round trip through a real agent and proxy (SOCK_SEQPACKET,
//      SCM_RIGHTS), the proxy opening the full in-pod listener set (7 sockets)
//      inside a fresh netns per pod; p50/p99. Same for Del -> Ack (closing them).
//   2. The same round trip with a handler that opens nothing (protocol cost).
//   3. Listener-set creation alone, two ways to reach the pod netns: setns on
//      the calling thread (what the library does, as ztunnel does) vs a helper
//      thread started per pod that enters the netns.
//   4. Memory held for N pods' listener sets: process RSS and kernel socket slabs.
// Usage: netns_zds_bench [PODS]   (default 1000)
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ambient/netns/netns.h"
#include "ambient/netns/pod_listeners.h"
#include "ambient/netns/zds.h"

namespace nn = ambient::netns;
namespace zds = ambient::netns::zds;
using Clock = std::chrono::steady_clock;

namespace {

struct Stats {
  double p50_us, p99_us, mean_us;
};

Stats Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]; };
  return {at(0.50), at(0.99), sum / v.size()};
}

long ReadKb(const char* file, const char* key) {
  std::ifstream in(file);
  std::string line;
  const std::string want = key;
  while (std::getline(in, line)) {
    if (line.compare(0, want.size(), want) == 0) return std::atol(line.c_str() + want.size());
  }
  return -1;
}

// KernelSocketBytes sums active objects x object size of the slab caches
// that hold sockets (TCP, TCPv6, UDP, UDPv6 and their inodes). Other
// processes' sockets add noise, but far less than the system-wide Slab figure.
long KernelSocketBytes() {
  std::ifstream in("/proc/slabinfo");
  std::string line;
  long total = 0;
  while (std::getline(in, line)) {
    char name[64];
    long active, num, objsize;
    if (std::sscanf(line.c_str(), "%63s %ld %ld %ld", name, &active, &num, &objsize) != 4) continue;
    const std::string n = name;
    if (n == "TCP" || n == "TCPv6" || n == "UDP" || n == "UDPv6" || n == "sock_inode_cache") {
      total += active * objsize;
    }
  }
  return total;
}

// Every netns made here stays alive until exit, so no phase runs while the
// kernel tears down the namespaces of an earlier one.
std::vector<nn::Netns>* g_keep_alive = new std::vector<nn::Netns>();

double Us(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

class ListenerHandler : public zds::WorkloadHandler {
 public:
  explicit ListenerHandler(bool open) : open_(open) {}
  absl::Status AddWorkload(const std::string& uid, const zds::WorkloadInfo&,
                           nn::Netns netns) override {
    if (!open_) return absl::OkStatus();
    absl::StatusOr<nn::PodListenerSet> set = nn::PodListenerSet::Open(netns);
    if (!set.ok()) return set.status();
    sets_[uid] = std::move(*set);
    return absl::OkStatus();
  }
  void RemoveWorkload(const std::string& uid) override { sets_.erase(uid); }

 private:
  bool open_;
  std::map<std::string, nn::PodListenerSet> sets_;
};

std::vector<nn::Netns> FreshPods(int n) {
  std::vector<nn::Netns> pods;
  pods.reserve(n);
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<nn::Netns> ns = nn::Netns::CreateUnnamed();
    if (!ns.ok() || !nn::BringUpLoopback(*ns).ok()) {
      std::fprintf(stderr, "creating netns %d failed: %s\n", i,
                   std::string(ns.status().message()).c_str());
      std::exit(1);
    }
    pods.push_back(std::move(*ns));
  }
  return pods;
}

struct RoundTrips {
  Stats add, del;
  long rss_kb, sock_kb;
};

RoundTrips ZdsRoundTrips(int n, bool open_listeners, const char* tag) {
  std::vector<nn::Netns> pods = FreshPods(n);
  const std::string path = absl::StrCat("/tmp/ambient-zds-bench-", getpid(), "-", tag, ".sock");
  zds::ZdsAgentOptions aopts;
  aopts.socket_path = path;
  absl::StatusOr<std::unique_ptr<zds::ZdsAgent>> agent = zds::ZdsAgent::Start(aopts);
  if (!agent.ok()) std::exit(1);
  ListenerHandler handler(open_listeners);
  zds::ZdsProxyOptions popts;
  popts.socket_path = path;
  zds::ZdsProxy proxy(popts, &handler);
  if (!proxy.Start().ok() || !(*agent)->WaitForProxies(1, absl::Seconds(5)).ok()) std::exit(1);

  const long rss0 = ReadKb("/proc/self/status", "VmRSS:");
  const long sock0 = KernelSocketBytes();
  std::vector<double> add_us, del_us;
  for (int i = 0; i < n; ++i) {
    std::string uid = absl::StrCat("pod-", i);
    auto t0 = Clock::now();
    absl::Status s = (*agent)->AddWorkload(uid, {uid, "bench", "default"}, pods[i]);
    add_us.push_back(Us(Clock::now() - t0));
    if (!s.ok()) {
      std::fprintf(stderr, "add %s: %s\n", uid.c_str(), std::string(s.message()).c_str());
      std::exit(1);
    }
  }
  const long rss1 = ReadKb("/proc/self/status", "VmRSS:");
  const long sock1 = KernelSocketBytes();
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    absl::Status s = (*agent)->DelWorkload(absl::StrCat("pod-", i));
    del_us.push_back(Us(Clock::now() - t0));
    if (!s.ok()) std::exit(1);
  }
  proxy.Stop();
  for (nn::Netns& p : pods) g_keep_alive->push_back(std::move(p));
  return {Summarize(add_us), Summarize(del_us), rss1 - rss0, (sock1 - sock0) / 1024};
}

// Helper-thread variant: a new thread enters the pod netns with setns, opens
// the set there (its own netns then is the pod's), and is joined.
absl::Status OpenViaHelperThread(const nn::Netns& ns, nn::PodListenerSet* out) {
  absl::Status result;
  std::thread t([&] {
    if (setns(ns.fd(), CLONE_NEWNET) != 0) {
      result = absl::InternalError("setns");
      return;
    }
    nn::LocalSocketFactory here;
    absl::StatusOr<nn::PodListenerSet> set = nn::PodListenerSet::Open(here);
    if (!set.ok()) {
      result = set.status();
      return;
    }
    *out = std::move(*set);
  });
  t.join();
  return result;
}

void ListenerCreation(int n) {
  // Fresh pods for each method (the first sockets in a netns cost more), and
  // the two methods interleaved so machine noise hits both alike.
  std::vector<nn::Netns> pods_a = FreshPods(n);
  std::vector<nn::Netns> pods_b = FreshPods(n);
  std::vector<double> calling, helper;
  std::vector<nn::PodListenerSet> keep;
  keep.reserve(2 * n);
  for (int i = 0; i < n; ++i) {
    for (int round = 0; round < 2; ++round) {
      if ((i + round) % 2 == 0) {
        auto t0 = Clock::now();
        absl::StatusOr<nn::PodListenerSet> set = nn::PodListenerSet::Open(pods_a[i]);
        calling.push_back(Us(Clock::now() - t0));
        if (!set.ok()) std::exit(1);
        keep.push_back(std::move(*set));
      } else {
        nn::PodListenerSet set;
        auto t0 = Clock::now();
        absl::Status s = OpenViaHelperThread(pods_b[i], &set);
        helper.push_back(Us(Clock::now() - t0));
        if (!s.ok()) std::exit(1);
        keep.push_back(std::move(set));
      }
    }
  }
  for (nn::Netns& p : pods_a) g_keep_alive->push_back(std::move(p));
  for (nn::Netns& p : pods_b) g_keep_alive->push_back(std::move(p));
  Stats a = Summarize(calling), b = Summarize(helper);
  std::printf("%-52s %9.1f %9.1f %9.1f\n", "listener set (7 sockets), setns on calling thread",
              a.p50_us, a.p99_us, a.mean_us);
  std::printf("%-52s %9.1f %9.1f %9.1f\n", "listener set (7 sockets), helper thread per pod",
              b.p50_us, b.p99_us, b.mean_us);
  std::printf("  ratio helper/calling p50: %.2fx\n", b.p50_us / a.p50_us);
}

// SocketCost: one TCP socket made inside a pod (enter, socket, return) vs a
// plain socket() in the caller's own netns, closed right away.
void SocketCost(int n) {
  std::vector<nn::Netns> pods = FreshPods(1);
  std::vector<double> in_pod, local;
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    absl::StatusOr<nn::UniqueFd> a = nn::SocketIn(pods[0], AF_INET6, SOCK_STREAM, 0);
    auto t1 = Clock::now();
    nn::UniqueFd b(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto t2 = Clock::now();
    if (!a.ok() || !b) std::exit(1);
    in_pod.push_back(Us(t1 - t0));
    local.push_back(Us(t2 - t1));
  }
  for (nn::Netns& p : pods) g_keep_alive->push_back(std::move(p));
  Stats a = Summarize(in_pod), b = Summarize(local);
  std::printf("%-52s %9.2f %9.2f %9.2f\n", "one socket via SocketIn (setns in, socket, setns out)",
              a.p50_us, a.p99_us, a.mean_us);
  std::printf("%-52s %9.2f %9.2f %9.2f\n", "one plain socket() in the caller's netns", b.p50_us,
              b.p99_us, b.mean_us);
  std::printf("  ratio SocketIn/socket p50: %.1fx\n", a.p50_us / b.p50_us);
}

}  // namespace

int main(int argc, char** argv) {
  if (geteuid() != 0) {
    std::fprintf(stderr, "netns_zds_bench needs root (netns, setns, SO_MARK)\n");
    return 1;
  }
  int n = argc > 1 ? std::atoi(argv[1]) : 1000;
  if (n <= 0 || n > 100000) {
    std::fprintf(stderr, "usage: netns_zds_bench [PODS]\n");
    return 2;
  }
  std::printf("pods per measurement: %d\n", n);
  std::printf("%-52s %9s %9s %9s\n", "what (microseconds)", "p50", "p99", "mean");
  RoundTrips full = ZdsRoundTrips(n, true, "full");
  RoundTrips bare = ZdsRoundTrips(n, false, "bare");
  std::printf("%-52s %9.1f %9.1f %9.1f\n", "ZDS Add->Ack, proxy opens 7 listeners in fresh netns",
              full.add.p50_us, full.add.p99_us, full.add.mean_us);
  std::printf("%-52s %9.1f %9.1f %9.1f\n", "ZDS Del->Ack, proxy closes them", full.del.p50_us,
              full.del.p99_us, full.del.mean_us);
  std::printf("%-52s %9.1f %9.1f %9.1f\n", "ZDS Add->Ack, no-op handler (protocol + fd pass)",
              bare.add.p50_us, bare.add.p99_us, bare.add.mean_us);
  std::printf("%-52s %9.1f %9.1f %9.1f\n", "ZDS Del->Ack, no-op handler", bare.del.p50_us,
              bare.del.p99_us, bare.del.mean_us);
  ListenerCreation(n);
  SocketCost(10 * n);
  std::printf("memory for %d pods' listener sets (%d sockets): process RSS %+ld KiB "
              "(%.1f KiB/pod); kernel socket slabs %+ld KiB (%.1f KiB/pod)\n",
              n, 7 * n, full.rss_kb, static_cast<double>(full.rss_kb) / n, full.sock_kb,
              static_cast<double>(full.sock_kb) / n);
  std::printf("  (no-op handler, same number of pods: RSS %+ld KiB, socket slabs %+ld KiB)\n",
              bare.rss_kb, bare.sock_kb);
  return 0;
}
