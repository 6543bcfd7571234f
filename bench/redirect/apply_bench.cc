// Side-by-side harness: installing the default in-pod rule set into a fresh
// network namespace, per pod, measured in one run for
//   native   ambient::redirect::Apply, nftables backend, with policy routing
//   lib-ipt  ambient::redirect::Apply, iptables backend (iptables-save +
//            iptables-restore in the namespace), with policy routing
//   ctl-nft  the whole `ambientctl rules apply --backend nftables` process,
//            for the shared-library ambientctl and for ambientctl-static
//   floors   fork+exec+wait of /bin/true and of a trivial static binary:
//            what any process costs here, whatever it does
//   peer-ipt `ip netns exec NS iptables-restore --noflush` < istio's payload
//   peer-nft `ip netns exec NS nft -f` istio's nft script
// Each sample gets its own freshly created namespace (creation is not
// timed). Then a soak: --pods N pods in a row with the native path, checking
// that open descriptors and resident memory do not grow.
//
// usage: redirect_apply_bench [--samples N] [--pods N] [--ambientctl PATH]
//                             [--ambientctl-static PATH]
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ambient/netns/netns.h"
#include "ambient/redirect/apply.h"
#include "ambient/redirect/render.h"
#include "redirect/exec_in_netns.h"

namespace rd = ambient::redirect;
using ambient::netns::Netns;
using Clock = std::chrono::steady_clock;

namespace {

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Stats {
  std::string name;
  std::vector<double> ms;
  double Pct(double p) const {
    std::vector<double> v = ms;
    std::sort(v.begin(), v.end());
    size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
    return v[i];
  }
  double Mean() const {
    double s = 0;
    for (double x : ms) s += x;
    return s / ms.size();
  }
};

// Every namespace the harness made, deleted at exit (also after Die).
std::vector<std::string>* g_pods = new std::vector<std::string>;
void DeletePods();

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "redirect_apply_bench: %s\n", what.c_str());
  std::exit(1);
}

std::string Prog(const std::string& name) {
  absl::StatusOr<std::string> p = rd::internal::FindProgram(name);
  if (!p.ok()) Die(std::string(p.status().message()));
  return *p;
}

void RunOk(const std::vector<std::string>& argv, const std::string& input = "") {
  absl::StatusOr<rd::internal::ExecResult> r = rd::internal::ExecIn(nullptr, argv, input);
  if (!r.ok()) Die(std::string(r.status().message()));
  if (r->exit_code != 0) Die(absl::StrCat(argv[0], " ", argv.size() > 1 ? argv[1] : "", ": ", r->err));
}

// A named namespace with lo up. Namespaces are deleted only at exit: the
// kernel tears a deleted namespace down in the background, and that work
// must not land inside another sample's timing.
class Pod {
 public:
  explicit Pod(const std::string& name) : name_(name) {
    g_pods->push_back(name_);
    RunOk({Prog("ip"), "netns", "add", name_});
    RunOk({Prog("ip"), "-n", name_, "link", "set", "lo", "up"});
  }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

void DeletePods() {
  for (const std::string& name : *g_pods) {
    rd::internal::ExecIn(nullptr, {"/usr/sbin/ip", "netns", "del", name}, "").IgnoreError();
  }
  g_pods->clear();
}

// Settle gives a moment between samples so one sample's aftermath (exited
// children being reaped, deferred kernel work) is not billed to the next. The
// CPU may idle meanwhile, so every row starts from cold caches, as a node
// agent woken by a pod event would. (Busy-waiting instead was tried: on this
// shared 2-core VM it starves the spawned processes and distorts their rows.)
void Settle() { usleep(2000); }

int CountFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (d != nullptr && readdir(d) != nullptr) ++n;
  if (d != nullptr) closedir(d);
  return n;
}

long RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  int samples = 100, pods = 1000;
  std::string ambientctl = AMBIENTCTL_PATH;
  std::string ambientctl_static = AMBIENTCTL_STATIC_PATH;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--samples" && i + 1 < argc) {
      samples = std::atoi(argv[++i]);
    } else if (a == "--pods" && i + 1 < argc) {
      pods = std::atoi(argv[++i]);
    } else if (a == "--ambientctl" && i + 1 < argc) {
      ambientctl = argv[++i];
    } else if (a == "--ambientctl-static" && i + 1 < argc) {
      ambientctl_static = argv[++i];

    } else {
      std::fprintf(stderr,
                   "usage: %s [--samples N] [--pods N] [--ambientctl PATH] [--ambientctl-static PATH]\n",
                   argv[0]);
      return 2;
    }
  }
  if (geteuid() != 0) Die("needs root (network namespaces)");
  std::atexit(DeletePods);

  rd::Config nft_config;
  nft_config.backend = rd::Backend::kNftables;
  rd::Config ipt_config;  // iptables, the default in-pod set
  rd::ApplyOptions options;
  options.iptables_variant = rd::IptablesVariant::kNft;
  absl::StatusOr<std::string> ipt_payload = rd::Render(ipt_config);
  absl::StatusOr<std::string> nft_script = rd::Render(nft_config);
  if (!ipt_payload.ok() || !nft_script.ok()) Die("render failed");
  const std::string ip = Prog("ip");

  Stats native{"native (library, nftables + routing)", {}},
      lib_ipt{"library, iptables backend + routing", {}},
      ctl{"ambientctl rules apply --backend nftables", {}},
      peer_ipt{"ip netns exec NS iptables-restore", {}}, peer_nft{"ip netns exec NS nft -f", {}},
      ctl_start{"ambientctl version (process start, no rules)", {}},
      ctl_static{"ambientctl-static rules apply --backend nftables", {}},
      ctl_static_start{"ambientctl-static version", {}},
      floor_true{"floor: /bin/true", {}}, floor_noop{"floor: static no-op binary", {}};
  const bool with_static = !ambientctl_static.empty();
  const std::string prefix = absl::StrCat("ambient-rdx-bench-", getpid(), "-");
  for (int i = 0; i < samples; ++i) {
    {
      Pod pod(absl::StrCat(prefix, i, "-a"));
      absl::StatusOr<Netns> ns = Netns::OpenByName(pod.name());
      if (!ns.ok()) Die(std::string(ns.status().message()));
      Settle();
      Clock::time_point t0 = Clock::now();
      absl::Status s = rd::Apply(nft_config, *ns, options);
      native.ms.push_back(Ms(Clock::now() - t0));
      if (!s.ok()) Die(std::string(s.message()));
    }
    {
      Pod pod(absl::StrCat(prefix, i, "-b"));
      absl::StatusOr<Netns> ns = Netns::OpenByName(pod.name());
      if (!ns.ok()) Die(std::string(ns.status().message()));
      Settle();
      Clock::time_point t0 = Clock::now();
      absl::Status s = rd::Apply(ipt_config, *ns, options);
      lib_ipt.ms.push_back(Ms(Clock::now() - t0));
      if (!s.ok()) Die(std::string(s.message()));
    }
    {
      Pod pod(absl::StrCat(prefix, i, "-c"));
      Settle();
      Clock::time_point t0 = Clock::now();
      RunOk({ambientctl, "rules", "apply", "--netns", pod.name(), "--backend", "nftables"});
      ctl.ms.push_back(Ms(Clock::now() - t0));
    }
    {
      Settle();
      Clock::time_point t0 = Clock::now();
      RunOk({ambientctl, "version"});
      ctl_start.ms.push_back(Ms(Clock::now() - t0));
    }
    if (with_static) {
      {
        Pod pod(absl::StrCat(prefix, i, "-f"));
        Settle();
        Clock::time_point t0 = Clock::now();
        RunOk({ambientctl_static, "rules", "apply", "--netns", pod.name(), "--backend", "nftables"});
        ctl_static.ms.push_back(Ms(Clock::now() - t0));
      }
      Settle();
      Clock::time_point t0 = Clock::now();
      RunOk({ambientctl_static, "version"});
      ctl_static_start.ms.push_back(Ms(Clock::now() - t0));
    }
    {
      Settle();
      Clock::time_point t0 = Clock::now();
      RunOk({"/bin/true"});
      floor_true.ms.push_back(Ms(Clock::now() - t0));
    }
    {
      Settle();
      Clock::time_point t0 = Clock::now();
      RunOk({NOOP_PATH});
      floor_noop.ms.push_back(Ms(Clock::now() - t0));
    }
    {
      Pod pod(absl::StrCat(prefix, i, "-d"));
      Settle();
      Clock::time_point t0 = Clock::now();
      RunOk({ip, "netns", "exec", pod.name(), "iptables-restore", "--noflush"}, *ipt_payload + "\n");
      peer_ipt.ms.push_back(Ms(Clock::now() - t0));
    }
    {
      Pod pod(absl::StrCat(prefix, i, "-e"));
      Settle();
      Clock::time_point t0 = Clock::now();
      RunOk({ip, "netns", "exec", pod.name(), "nft", "-f", "-"}, *nft_script);
      peer_nft.ms.push_back(Ms(Clock::now() - t0));
    }
  }
  DeletePods();
  std::printf("%d samples per row, default in-pod rule set (IPv4), fresh namespace each\n\n",
              samples);
  std::printf("| %-48s | %8s | %8s | %8s | %s |\n", "what", "p50 ms", "p99 ms", "mean ms",
              "p50 vs native");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(50, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str(), std::string(15, '-').c_str());
  std::vector<const Stats*> rows = {&native, &lib_ipt, &ctl, &ctl_start};
  if (with_static) rows.insert(rows.end(), {&ctl_static, &ctl_static_start});
  rows.insert(rows.end(), {&floor_true, &floor_noop, &peer_ipt, &peer_nft});
  for (const Stats* s : rows) {
    std::printf("| %-48s | %8.3f | %8.3f | %8.3f | %12.1fx |\n", s->name.c_str(), s->Pct(0.5),
                s->Pct(0.99), s->Mean(), s->Pct(0.5) / native.Pct(0.5));
  }
  std::printf("\niptables-restore exec / native p50: %.1fx (goal >= 20x)\n",
              peer_ipt.Pct(0.5) / native.Pct(0.5));
  std::printf("iptables-restore exec / ambientctl process p50: %.1fx (goal >= 10x)\n",
              peer_ipt.Pct(0.5) / ctl.Pct(0.5));
  if (with_static) {
    std::printf("iptables-restore exec / ambientctl-static process p50: %.1fx (goal >= 10x)\n",
                peer_ipt.Pct(0.5) / ctl_static.Pct(0.5));
  }
  std::printf("iptables-restore exec / static no-op process p50: %.1fx (the most any process can reach)\n",
              peer_ipt.Pct(0.5) / floor_noop.Pct(0.5));
  std::printf("nft -f exec / native p50: %.1fx\n", peer_nft.Pct(0.5) / native.Pct(0.5));

  // Soak: many pods in a row, unnamed namespaces (freed with their handle).
  Stats soak{"soak", {}};
  int fds_before = 0;
  long rss_before = 0;
  for (int i = 0; i < pods; ++i) {
    if (i == 50) {  // after warm-up
      fds_before = CountFds();
      rss_before = RssKb();
    }
    absl::StatusOr<Netns> ns = Netns::CreateUnnamed();
    if (!ns.ok()) Die(std::string(ns.status().message()));
    if (absl::Status s = ambient::netns::BringUpLoopback(*ns); !s.ok()) Die(std::string(s.message()));
    Clock::time_point t0 = Clock::now();
    absl::Status s = rd::Apply(nft_config, *ns, options);
    soak.ms.push_back(Ms(Clock::now() - t0));
    if (!s.ok()) Die(std::string(s.message()));
  }
  if (pods > 50) {
    std::printf("\nsoak: %d pods in a row (native): p50 %.3f ms, p99 %.3f ms; open fds %d -> %d; "
                "VmRSS %ld -> %ld kB\n",
                pods, soak.Pct(0.5), soak.Pct(0.99), fds_before, CountFds(), rss_before, RssKb());
  }
  return 0;
}
