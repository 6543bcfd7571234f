// node-agent: an example node agent (istio-cni's role in ambient mode) built
// on ambient's C++ layers. For every pod of this node in the node config
// (a workload with "netns"), it installs istio-cni's in-pod redirect rules in
// the pod's netns and hands the netns to the node proxy over ZDS
// (AddWorkload with WorkloadInfo; a proxy that connects later gets them in
// its snapshot). On SIGINT/SIGTERM it sends DelWorkload for each pod,
// removes the rules and exits. Progress goes to stdout.
#include <signal.h>

#include <cstdio>
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
    "  --dns-capture X    redirect the pods' DNS to :15053 (default off: the example\n"
    "                     node proxy has no DNS proxy, so captured DNS would fail)\n"
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

int main(int argc, char** argv) {
  std::string config_path;
  std::string zds_socket = netns::zds::kDefaultSocketPath;
  redirect::Config rules;
  rules.dns_capture = false;  // see --dns-capture in the usage text
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
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::vector<Pod> pods;
  auto remove_rules = [&] {
    for (const Pod& p : pods) {
      absl::Status st = redirect::Delete(rules, p.netns);
      if (st.ok()) {
        Say(absl::StrCat("pod ", p.config.workload.uid, ": redirect rules removed"));
      } else {
        std::fprintf(stderr, "node-agent: pod %s: removing rules: %s\n",
                     p.config.workload.uid.c_str(), st.ToString().c_str());
      }
    }
  };
  for (const examples::PodConfig& pc : config->pods) {
    if (pc.netns.empty()) continue;
    absl::StatusOr<netns::Netns> ns = netns::Netns::Open(pc.netns);
    if (!ns.ok()) {
      remove_rules();
      return Fail(
          absl::StrCat("pod ", pc.workload.uid, ": netns ", pc.netns, ": ", ns.status().message()));
    }
    if (absl::Status st = redirect::Apply(rules, *ns); !st.ok()) {
      remove_rules();
      return Fail(absl::StrCat("pod ", pc.workload.uid, ": installing rules: ", st.message()));
    }
    Say(absl::StrCat("pod ", pc.workload.uid, " (", pc.workload.ns, "/", pc.workload.name,
                     "): in-pod redirect rules installed in netns ", pc.netns, " (",
                     rules.backend == redirect::Backend::kIptables ? "iptables" : "nftables", ")"));
    pods.push_back(Pod{pc, std::move(*ns)});
  }

  netns::zds::ZdsAgentOptions ao;
  ao.socket_path = zds_socket;
  absl::StatusOr<std::unique_ptr<netns::zds::ZdsAgent>> agent = netns::zds::ZdsAgent::Start(ao);
  if (!agent.ok()) {
    remove_rules();
    return Fail(absl::StrCat("ZDS socket ", zds_socket, ": ", agent.status().message()));
  }
  Say(absl::StrCat("ZDS socket listening at ", zds_socket));
  for (const Pod& p : pods) {
    const runtime::Workload& w = p.config.workload;
    absl::Status st = (*agent)->AddWorkload(w.uid, {w.name, w.ns, w.service_account}, p.netns);
    if (st.ok()) {
      Say(absl::StrCat("pod ", w.uid, ": netns handed to the node proxy (AddWorkload acked)"));
    } else if (absl::IsUnavailable(st)) {
      Say(absl::StrCat("pod ", w.uid, ": recorded; the node proxy gets it in its snapshot"));
    } else {
      Say(absl::StrCat("pod ", w.uid, ": the node proxy refused it: ", st.message()));
    }
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  Say(absl::StrCat("got signal ", sig, ": deleting pods"));
  for (const Pod& p : pods) {
    absl::Status st = (*agent)->DelWorkload(p.config.workload.uid);
    Say(absl::StrCat("pod ", p.config.workload.uid, ": DelWorkload ",
                     st.ok() ? "acked" : absl::StrCat("not delivered: ", st.message())));
  }
  agent->reset();
  remove_rules();
  return 0;
}
