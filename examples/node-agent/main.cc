// node-agent: an example node agent (istio-cni's role in ambient mode) built
// on ambient's C++ layers. For every pod of this node in the node config
// (a workload with "netns"), it installs istio-cni's in-pod redirect rules in
// the pod's netns and hands the netns to the node proxy over ZDS
// (AddWorkload with WorkloadInfo; a proxy that connects later gets them in
// its snapshot). SIGHUP reads the config again: new pods are enrolled, pods
// no longer listed are taken out (DelWorkload, rules removed). On
// SIGINT/SIGTERM it takes every pod out and exits. Progress goes to stdout.
#include <signal.h>

#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ambient/netns/netns.h"
#include "ambient/netns/zds.h"
#include "ambient/redirect/apply.h"
#include "ambient/redirect/config.h"
#include "node_config.h"

namespace {

using namespace ambient;  // NOLINT: a small program

constexpr char kUsage[] =
    "usage: node-agent --config FILE [--zds-socket PATH] [--backend iptables|nftables] [--ipv6]\n"
    "                  [--dns-capture on|off]\n"
    "\n"
    "Installs the in-pod redirect rules in each pod of this node (workloads with\n"
    "\"netns\" in the config) and hands their netns to the node proxy over ZDS.\n"
    "  --config FILE      the node config (JSON, see examples/node/node_config.h)\n"
    "  --zds-socket PATH  where to listen (default /var/run/ztunnel/ztunnel.sock)\n"
    "  --backend B        iptables (default) or nftables\n"
    "  --ipv6             also install the IPv6 rules (dual-stack pods)\n"
    "  --dns-capture X    redirect the pods' DNS (UDP and TCP port 53) to the node\n"
    "                     proxy's DNS proxy on :15053 (default on, as istio-cni)\n"
    "SIGHUP re-reads the config (new pods enrolled, removed pods taken out).\n"
    "Runs until SIGINT/SIGTERM, then deletes the pods (DelWorkload) and their rules.\n";

int Fail(const std::string& why) {
  std::fprintf(stderr, "node-agent: %s\n", why.c_str());
  return 1;
}

int Usage(const std::string& why) {
  std::fprintf(stderr, "node-agent: %s\n%s", why.c_str(), kUsage);
  return 2;
}

void Say(const std::string& line) {
  std::printf("node-agent: %s\n", line.c_str());
  std::fflush(stdout);
}

struct Pod {
  examples::PodConfig config;
  netns::Netns netns;
};

}  // namespace

static int RealMain(int argc, char** argv) {
  std::string config_path;
  std::string zds_socket = netns::zds::kDefaultSocketPath;
  redirect::Config rules;
  rules.dns_capture = true;  // istio's default; see --dns-capture in the usage text
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v;
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--config") {
      if (!value(&config_path)) return Usage("--config needs a value");
    } else if (arg == "--zds-socket") {
      if (!value(&zds_socket)) return Usage("--zds-socket needs a value");
    } else if (arg == "--dns-capture") {
      if (!value(&v) || (v != "on" && v != "off")) return Usage("--dns-capture must be on or off");
      rules.dns_capture = v == "on";
    } else if (arg == "--ipv6") {
      rules.ipv6 = true;
    } else if (arg == "--backend") {
      if (!value(&v)) return Usage("--backend needs a value");
      if (v == "iptables") {
        rules.backend = redirect::Backend::kIptables;
      } else if (v == "nftables") {
        rules.backend = redirect::Backend::kNftables;
      } else {
        return Usage("--backend must be iptables or nftables");
      }
    } else {
      return Usage(absl::StrCat("unknown argument \"", arg, "\""));
    }
  }
  if (config_path.empty()) return Usage("--config is required");

  absl::StatusOr<examples::NodeConfig> config = examples::LoadNodeConfig(config_path);
  if (!config.ok()) return Fail(std::string(config.status().message()));

  // Signals are taken with sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  netns::zds::ZdsAgentOptions ao;
  ao.socket_path = zds_socket;
  absl::StatusOr<std::unique_ptr<netns::zds::ZdsAgent>> agent = netns::zds::ZdsAgent::Start(ao);
  if (!agent.ok())
    return Fail(absl::StrCat("ZDS socket ", zds_socket, ": ", agent.status().message()));
  Say(absl::StrCat("ZDS socket listening at ", zds_socket));
  Say(rules.dns_capture ? "DNS capture on: the pods' DNS (port 53) goes to the node proxy's "
                          ":15053 (its DNS proxy; node-proxy --dns on, the default)"
                        : "DNS capture off (--dns-capture off): the pods' DNS goes where "
                          "their resolv.conf says");

  std::map<std::string, Pod> pods;  // by uid
  const char* backend = rules.backend == redirect::Backend::kIptables ? "iptables" : "nftables";
  // AddPod enrolls one pod: rules into its netns, then the netns over ZDS.
  auto add_pod = [&](const examples::PodConfig& pc) -> absl::Status {
    absl::StatusOr<netns::Netns> ns = netns::Netns::Open(pc.netns);
    if (!ns.ok()) {
      return absl::Status(ns.status().code(), absl::StrCat("pod ", pc.workload.uid, ": netns ",
                                                           pc.netns, ": ", ns.status().message()));
    }
    if (absl::Status st = redirect::Apply(rules, *ns); !st.ok()) {
      return absl::Status(
          st.code(), absl::StrCat("pod ", pc.workload.uid, ": installing rules: ", st.message()));
    }
    const runtime::Workload& w = pc.workload;
    Say(absl::StrCat("pod ", w.uid, " (", w.ns, "/", w.name,
                     "): in-pod redirect rules installed in netns ", pc.netns, " (", backend, ")"));
    absl::Status st = (*agent)->AddWorkload(w.uid, {w.name, w.ns, w.service_account}, *ns);
    if (st.ok()) {
      Say(absl::StrCat("pod ", w.uid, ": netns handed to the node proxy (AddWorkload acked)"));
    } else if (absl::IsUnavailable(st)) {
      Say(absl::StrCat("pod ", w.uid, ": recorded; the node proxy gets it in its snapshot"));
    } else {
      Say(absl::StrCat("pod ", w.uid, ": the node proxy refused it: ", st.message()));
    }
    pods[w.uid] = Pod{pc, std::move(*ns)};
    return absl::OkStatus();
  };
  // DelPod takes a pod out: DelWorkload over ZDS, then its rules.
  auto del_pod = [&](const std::string& uid) {
    auto it = pods.find(uid);
    if (it == pods.end()) return;
    absl::Status st = (*agent)->DelWorkload(uid);
    Say(absl::StrCat("pod ", uid, ": DelWorkload ",
                     st.ok() ? "acked" : absl::StrCat("not delivered: ", st.message())));
    st = redirect::Delete(rules, it->second.netns);
    if (st.ok()) {
      Say(absl::StrCat("pod ", uid, ": redirect rules removed"));
    } else {
      std::fprintf(stderr, "node-agent: pod %s: removing rules: %s\n", uid.c_str(),
                   st.ToString().c_str());
    }
    pods.erase(it);
  };
  auto del_all = [&] {
    while (!pods.empty()) del_pod(pods.begin()->first);
  };

  for (const examples::PodConfig& pc : config->pods) {
    if (pc.netns.empty()) continue;
    if (absl::Status st = add_pod(pc); !st.ok()) {
      del_all();
      return Fail(std::string(st.message()));
    }
  }

  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig != SIGHUP) {
      Say(absl::StrCat("got signal ", sig, ": deleting pods"));
      break;
    }
    // SIGHUP: the config file is the pod list; enroll new pods, take out
    // the ones that are gone (or moved to another netns).
    absl::StatusOr<examples::NodeConfig> next = examples::LoadNodeConfig(config_path);
    if (!next.ok()) {
      std::fprintf(stderr, "node-agent: SIGHUP: keeping the current pods: %s\n",
                   std::string(next.status().message()).c_str());
      continue;
    }
    Say("SIGHUP: config read again");
    std::map<std::string, examples::PodConfig> wanted;
    for (const examples::PodConfig& pc : next->pods) {
      if (!pc.netns.empty()) wanted[pc.workload.uid] = pc;
    }
    std::vector<std::string> gone;
    for (const auto& [uid, pod] : pods) {
      auto it = wanted.find(uid);
      if (it == wanted.end() || it->second.netns != pod.config.netns) gone.push_back(uid);
    }
    for (const std::string& uid : gone) del_pod(uid);
    for (const auto& [uid, pc] : wanted) {
      if (pods.count(uid) != 0) continue;
      if (absl::Status st = add_pod(pc); !st.ok()) {
        std::fprintf(stderr, "node-agent: %s\n", std::string(st.message()).c_str());
      }
    }
  }
  del_all();
  agent->reset();
  return 0;
}

// No exception (std::bad_alloc from a huge input, say) leaves main: it is
// reported like any other failure, exit 1.
int main(int argc, char** argv) {
  try {
    return RealMain(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "node-agent: fatal: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "node-agent: fatal: unknown exception\n");
  }
  return 1;
}
