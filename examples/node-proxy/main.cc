// node-proxy: an example node proxy (ztunnel's role, in-pod mode) built on
// ambient's C++ layers. It reads the node config (workloads, SVIDs; see
// examples/node/node_config.h), connects to the node agent's ZDS socket,
// captures every pod the agent hands over (listeners 15001/15006/15008
// inside the pod's netns) and carries pod traffic over HBONE; its DNS proxy
// answers the pods' captured DNS on 15053 (mesh names from the config,
// the rest forwarded upstream). Log and
// access log lines go to stdout; with --metrics it also serves Prometheus
// metrics and readiness over HTTP, with --admin a config dump and the log
// level (admin_server.h); it runs until SIGINT or SIGTERM.
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

#include "admin_server.h"
#include "ambient/authz/policy_codec.h"
#include "ambient/dns/pod_dns.h"
#include "ambient/dns/server.h"
#include "ambient/hbone/telemetry.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/trust_bundle.h"
#include "ambient/netns/zds.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/node_proxy.h"
#include "ambient/xds/node_control_plane.h"
#include "config_dump.h"
#include "metrics_server.h"
#include "node_config.h"

namespace {

using namespace ambient;  // NOLINT: a small program

constexpr char kUsage[] =
    "usage: node-proxy --config FILE [--zds-socket PATH] [--policy FILE] [--metrics ADDR]\n"
    "                  [--admin ADDR] [--dns on|off] [--dns-upstream IP:PORT,...]\n"
    "                  [--log-level LEVEL] [--verbose]\n"
    "       node-proxy --xds-address HOST:PORT --node-name NAME [--ca-address HOST:PORT]\n"
    "                  [--xds-root-cert FILE] [--token-file FILE] [--cluster-id ID]\n"
    "                  [--pod-name N] [--pod-namespace NS] [--instance-ip IP] [...]\n"
    "\n"
    "Captures the pods a node agent hands over on the ZDS socket (default\n"
    "/var/run/ztunnel/ztunnel.sock) and carries their TCP over HBONE mTLS.\n"
    "The mesh (workloads, services, policies, SVIDs) comes from files (--config)\n"
    "or from istiod (--xds-address: delta xDS, and certificates from the Istio CA).\n"
    "  --config FILE      workloads and SVIDs (JSON, see examples/node/node_config.h);\n"
    "                     its local_config brings ztunnel's local config (services,\n"
    "                     waypoints, policies)\n"
    "  --xds-address A    istiod's xDS address, host:port (e.g.\n"
    "                     istiod.istio-system.svc:15012; ztunnel's XDS_ADDRESS)\n"
    "  --ca-address A     the Istio CA (CA_ADDRESS; default: the xDS address)\n"
    "  --xds-root-cert F  PEM roots istiod's (and the CA's) TLS certificate must chain\n"
    "                     to (XDS_ROOT_CA); the server name checked is\n"
    "                     istiod.istio-system.svc. Without it: cleartext (tests only)\n"
    "  --token-file F     bearer token sent on every call (ztunnel reads\n"
    "                     /var/run/secrets/tokens/istio-token), re-read on change\n"
    "  --cluster-id ID    the clusterid header (CLUSTER_ID; default Kubernetes)\n"
    "  --secret-ttl D     lifetime asked of the CA for each certificate (SECRET_TTL;\n"
    "                     default 24h); renewed at half of it\n"
    "  --node-name NAME   this node (NODE_NAME): pods are matched among its workloads\n"
    "  --pod-name N, --pod-namespace NS, --instance-ip IP\n"
    "                     this proxy's own pod (POD_NAME, POD_NAMESPACE, INSTANCE_IP)\n"
    "                     for the xDS node id; each defaults to that environment\n"
    "                     variable, as do --node-name and --cluster-id; ISTIO_META_*\n"
    "                     variables go into the node metadata\n"
    "  --zds-socket PATH  the node agent's ZDS socket\n"
    "  --policy FILE      Istio Authorization policies, {\"policies\": [...]} (JSON)\n"
    "  --metrics ADDR     serve HTTP on ADDR (ip:port, e.g. 127.0.0.1:15020; off by\n"
    "                     default): GET /metrics (istio_tcp_* counters, Prometheus\n"
    "                     text) and GET /healthz/ready (200 once the node agent's\n"
    "                     snapshot is applied and no pod is pending, and with\n"
    "                     --xds-address both xDS types ACKed and every captured\n"
    "                     pod's certificate issued; else 503)\n"
    "  --admin ADDR       serve the admin endpoint on ADDR (off by default; ztunnel's\n"
    "                     is 127.0.0.1:15000; keep it on loopback, nothing is\n"
    "                     authenticated): GET /config_dump (workloads, services,\n"
    "                     policies, certificates as JSON in ztunnel's shape, for\n"
    "                     istioctl ztunnel-config), GET /logging (the level) and\n"
    "                     POST /logging?level=LEVEL (change it at run time)\n"
    "  --dns X            the DNS proxy on 15053 (UDP+TCP) in every captured pod\n"
    "                     (default on): A/AAAA for the mesh's service and workload\n"
    "                     names, the rest forwarded upstream; istio_dns_* metrics\n"
    "  --dns-upstream L   resolvers the DNS proxy forwards to, ip:port (or a bare IP,\n"
    "                     port 53), comma-separated; default: the node's\n"
    "                     /etc/resolv.conf nameservers. They are dialled from inside\n"
    "                     the pod's netns, so a loopback address will not do\n"
    "  --log-level LEVEL  print lines of LEVEL and above: debug, info (default), warn\n"
    "                     or error\n"
    "  --verbose          also print debug lines (--log-level debug)\n"
    "  --log-format F     text (default) or json: one JSON object per line with\n"
    "                     level, time, scope, message and the access lines' fields\n"
    "                     (ztunnel's LOG_FORMAT=json, the default from LOG_FORMAT)\n"
    "Prints log and ztunnel-style access log lines on stdout; stops on SIGINT/SIGTERM.\n"
    "SIGHUP reads --config and --policy again (a bad file keeps what was in force).\n";

void Print(LogLevel level, absl::string_view component, absl::string_view message);

runtime::EventLoop* g_loop = nullptr;
int g_hup_pipe = -1;  // write end: SIGHUP wakes the loop through it

void OnSignal(int sig) {
  if (sig == SIGHUP) {
    char one = 1;
    if (g_hup_pipe >= 0) (void)!write(g_hup_pipe, &one, 1);
    return;
  }
  if (g_loop != nullptr) g_loop->Stop();
}

// LoadPolicies reads the policy file (if any) into `store`, after the local
// config's policies `extra` (unchanged on error).
absl::Status LoadPolicies(const std::string& path, authz::PolicyStore* store,
                          std::vector<authz::Policy> extra = {}) {
  absl::StatusOr<std::vector<authz::Policy>> policies = std::vector<authz::Policy>();
  if (!path.empty()) {
    absl::StatusOr<std::string> text = examples::ReadFile(path);
    if (!text.ok()) return text.status();
    policies = authz::DecodePolicyListJson(*text);
  }
  if (!policies.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", policies.status().message()));
  }
  policies->insert(policies->begin(), std::make_move_iterator(extra.begin()),
                   std::make_move_iterator(extra.end()));
  size_t n = policies->size();
  if (absl::Status st = store->Replace(std::move(*policies)); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", st.message()));
  }
  Print(LogLevel::kInfo, "node-proxy",
        absl::StrCat("authorization: ", n, " policy(ies) from ",
                     path.empty() ? "the local config" : path));
  return absl::OkStatus();
}

// LoadServices replaces the directory's services with `services`.
void LoadServices(runtime::WorkloadDirectory* dir, const std::vector<runtime::Service>& services) {
  for (const runtime::Service& s : dir->AllServices()) dir->RemoveService(s.ns, s.hostname);
  for (const runtime::Service& s : services) {
    if (absl::Status st = dir->UpsertService(s); !st.ok()) {
      Print(LogLevel::kError, "node-proxy", std::string(st.message()));
    }
  }
}

std::mutex g_out_mu;
// Lines below this level are dropped (--log-level; the admin endpoint's
// POST /logging?level= changes it while the proxy runs).
std::atomic<LogLevel> g_log_level{LogLevel::kInfo};

// g_log_json: LOG_FORMAT=json (or --log-format json), ztunnel's JSON logs.
bool g_log_json = false;

// LineFields splits a log line into its message and its key=value fields
// (access lines: "connection complete src.addr=... dst.workload=\"b\" ..."),
// as ztunnel's JSON logs carry them; digits-only values become numbers.
void LineFields(absl::string_view text, nlohmann::ordered_json* out) {
  std::string message;
  size_t i = 0;
  bool fields = false;
  while (i < text.size()) {
    size_t end = text.find(' ', i);
    if (end == absl::string_view::npos) end = text.size();
    absl::string_view token = text.substr(i, end - i);
    size_t eq = token.find('=');
    if (!fields && (eq == absl::string_view::npos || eq == 0)) {
      absl::StrAppend(&message, message.empty() ? "" : " ", token);
      i = end + 1;
      continue;
    }
    if (eq == absl::string_view::npos || eq == 0) {  // stray text after the fields
      absl::StrAppend(&message, " ", token);
      i = end + 1;
      continue;
    }
    fields = true;
    std::string key(token.substr(0, eq));
    size_t v = i + eq + 1;
    if (v < text.size() && text[v] == '"') {  // a quoted value: up to the unescaped quote
      std::string value;
      size_t j = v + 1;
      for (; j < text.size() && text[j] != '"'; ++j) {
        if (text[j] == '\\' && j + 1 < text.size()) ++j;
        value.push_back(text[j]);
      }
      (*out)[key] = value;
      i = j + 2;
      continue;
    }
    absl::string_view value = text.substr(v, end - v);
    uint64_t n = 0;
    if (!value.empty() && value.size() < 20 && absl::SimpleAtoi(value, &n) &&
        value.find_first_not_of("0123456789") == absl::string_view::npos) {
      (*out)[key] = n;
    } else {
      (*out)[key] = std::string(value);
    }
    i = end + 1;
  }
  (*out)["message"] = message;
}

void Print(LogLevel level, absl::string_view component, absl::string_view message) {
  if (level < g_log_level.load(std::memory_order_relaxed)) return;
  static const char* const kNames[] = {"debug", "info", "warn", "error"};
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char when[64];
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &t);
  std::string time = absl::StrFormat("%s.%06ldZ", when, ts.tv_nsec / 1000);
  std::string line;
  if (g_log_json) {
    nlohmann::ordered_json j;
    j["level"] = kNames[static_cast<int>(level)];
    j["time"] = time;
    j["scope"] = std::string(component);
    if (component == "access") {
      j["message"] = "";  // (its place: before the fields)
      LineFields(message, &j);
    } else {
      j["message"] = std::string(message);
    }
    // Bytes that are not UTF-8 (from a peer's baggage, say) are replaced.
    line = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  } else {
    line = absl::StrFormat("%s  %-5s %s  %s", time, kNames[static_cast<int>(level)], component,
                           message);
  }
  std::lock_guard<std::mutex> lock(g_out_mu);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int Fail(const std::string& why) {
  std::fprintf(stderr, "node-proxy: %s\n", why.c_str());
  return 1;
}

int Usage(const std::string& why) {
  std::fprintf(stderr, "node-proxy: %s\n%s", why.c_str(), kUsage);
  return 2;
}

}  // namespace

static int RealMain(int argc, char** argv) {
  std::string config_path;
  std::string policy_path;
  std::string metrics_addr;
  std::string admin_addr;
  std::string zds_socket = netns::zds::kDefaultSocketPath;
  bool dns_on = true;
  std::string dns_upstream;
  // xDS mode: ztunnel's environment variables are the defaults.
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v == nullptr ? "" : v);
  };
  std::string xds_address;
  std::string ca_address;
  std::string xds_root_cert;
  std::string token_file;
  std::string cluster_id = env("CLUSTER_ID").empty() ? "Kubernetes" : env("CLUSTER_ID");
  std::string secret_ttl = env("SECRET_TTL").empty() ? "24h" : env("SECRET_TTL");
  g_log_json = env("LOG_FORMAT") == "json";
  xds::NodeIdentity node;
  node.node_name = env("NODE_NAME");
  node.pod_name = env("POD_NAME");
  node.pod_namespace = env("POD_NAMESPACE");
  if (!env("INSTANCE_IP").empty()) node.instance_ip = env("INSTANCE_IP");
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view kv = *e;
    if (!absl::ConsumePrefix(&kv, "ISTIO_META_")) continue;
    size_t eq = kv.find('=');
    if (eq == absl::string_view::npos || eq == 0) continue;
    node.metadata.emplace_back(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--config") {
      if (!value(&config_path)) return Usage("--config needs a value");
    } else if (arg == "--policy") {
      if (!value(&policy_path)) return Usage("--policy needs a value");
    } else if (arg == "--metrics") {
      if (!value(&metrics_addr)) return Usage("--metrics needs a value");
      if (!ambient::SocketAddress::Parse(metrics_addr).ok()) {
        return Usage(absl::StrCat("--metrics: \"", metrics_addr, "\" is not ip:port"));
      }
    } else if (arg == "--admin") {
      if (!value(&admin_addr)) return Usage("--admin needs a value");
      if (!ambient::SocketAddress::Parse(admin_addr).ok()) {
        return Usage(absl::StrCat("--admin: \"", admin_addr, "\" is not ip:port"));
      }
    } else if (arg == "--log-level") {
      std::string v;
      std::optional<LogLevel> level = value(&v) ? examples::ParseLogLevel(v) : std::nullopt;
      if (!level) return Usage("--log-level must be debug, info, warn or error");
      g_log_level = *level;
    } else if (arg == "--zds-socket") {
      if (!value(&zds_socket)) return Usage("--zds-socket needs a value");
    } else if (arg == "--dns") {
      std::string v;
      if (!value(&v) || (v != "on" && v != "off")) return Usage("--dns must be on or off");
      dns_on = v == "on";
    } else if (arg == "--dns-upstream") {
      if (!value(&dns_upstream) || dns_upstream.empty()) {
        return Usage("--dns-upstream needs ip:port[,ip:port...]");
      }
      if (auto u = dns::ParseUpstreams(dns_upstream); !u.ok()) {
        return Usage(absl::StrCat("--dns-upstream: ", u.status().message()));
      }
    } else if (arg == "--xds-address" || arg == "--ca-address") {
      std::string* out = arg == "--xds-address" ? &xds_address : &ca_address;
      if (!value(out) || out->empty()) return Usage(arg + " needs host:port");
      // ztunnel's XDS_ADDRESS is a URL: https://istiod.istio-system.svc:15012
      absl::string_view v = *out;
      if (absl::ConsumePrefix(&v, "https://")) *out = std::string(v);
    } else if (arg == "--xds-root-cert") {
      if (!value(&xds_root_cert) || xds_root_cert.empty()) return Usage("--xds-root-cert needs a file");
    } else if (arg == "--token-file") {
      if (!value(&token_file) || token_file.empty()) return Usage("--token-file needs a file");
    } else if (arg == "--log-format") {
      std::string v;
      if (!value(&v) || (v != "text" && v != "json"))
        return Usage("--log-format must be text or json");
      g_log_json = v == "json";
    } else if (arg == "--secret-ttl") {
      if (!value(&secret_ttl)) return Usage("--secret-ttl needs a duration (e.g. 24h)");
    } else if (arg == "--cluster-id") {
      if (!value(&cluster_id) || cluster_id.empty()) return Usage("--cluster-id needs a value");
    } else if (arg == "--node-name") {
      if (!value(&node.node_name) || node.node_name.empty()) return Usage("--node-name needs a value");
    } else if (arg == "--pod-name") {
      if (!value(&node.pod_name)) return Usage("--pod-name needs a value");
    } else if (arg == "--pod-namespace") {
      if (!value(&node.pod_namespace)) return Usage("--pod-namespace needs a value");
    } else if (arg == "--instance-ip") {
      if (!value(&node.instance_ip) || !ambient::IpAddress::Parse(node.instance_ip).ok()) {
        return Usage("--instance-ip needs an IP address");
      }
    } else if (arg == "--verbose") {
      g_log_level = LogLevel::kDebug;
    } else {
      return Usage(absl::StrCat("unknown argument \"", arg, "\""));
    }
  }
  const bool xds_mode = !xds_address.empty();
  if (xds_mode) {
    if (!config_path.empty() || !policy_path.empty()) {
      return Usage("--xds-address takes the mesh from istiod: leave out --config and --policy");
    }
    if (node.node_name.empty()) return Usage("--xds-address needs --node-name (or NODE_NAME)");
  } else {
    if (config_path.empty()) return Usage("--config (or --xds-address) is required");
    if (!ca_address.empty() || !xds_root_cert.empty() || !token_file.empty()) {
      return Usage("--ca-address, --xds-root-cert and --token-file need --xds-address");
    }
  }
  if (!dns_on && !dns_upstream.empty()) return Usage("--dns-upstream needs --dns on");
  absl::Duration ttl;
  if (!absl::ParseDuration(secret_ttl, &ttl) || ttl < absl::Seconds(2) ||
      ttl > absl::Hours(24 * 365)) {
    return Usage(absl::StrCat("--secret-ttl (SECRET_TTL) \"", secret_ttl,
                              "\" is not a duration from 2s to 8760h (e.g. 24h, 90m)"));
  }

  auto directory = std::make_shared<runtime::WorkloadDirectory>();
  // SVID files by uid; read and replaced on the loop thread only.
  auto svid_files = std::make_shared<std::map<std::string, examples::PodConfig>>();
  runtime::NodeProxyOptions options;
  options.workloads = directory;
  std::shared_ptr<authz::PolicyStore> policies;
  std::string trust_roots_pem;  // file mode: the trust bundle's PEM (admin dump)
  if (!xds_mode) {
  absl::StatusOr<examples::NodeConfig> config = examples::LoadNodeConfig(config_path);
  if (!config.ok()) return Fail(std::string(config.status().message()));
  for (const examples::PodConfig& pod : config->pods) {
    if (absl::Status st = directory->Upsert(pod.workload); !st.ok()) {
      return Fail(std::string(st.message()));
    }
    (*svid_files)[pod.workload.uid] = pod;
  }
  LoadServices(directory.get(), config->services);
  absl::StatusOr<identity::TrustDomain> td = identity::TrustDomain::Parse(config->trust_domain);
  if (!td.ok()) return Fail(absl::StrCat("trust_domain: ", td.status().message()));
  absl::StatusOr<std::string> roots = examples::ReadFile(config->trust_bundle);
  if (!roots.ok()) return Fail(std::string(roots.status().message()));
  trust_roots_pem = *roots;
  auto bundle = identity::TrustBundle::FromPem(*td, *roots);
  if (!bundle.ok())
    return Fail(absl::StrCat(config->trust_bundle, ": ", bundle.status().message()));
  auto set = identity::TrustBundleSet::Create({*bundle});
  if (!set.ok()) return Fail(std::string(set.status().message()));

  options.bundles = std::make_shared<identity::TrustBundleSource>(*set);
  // SVIDs are read when a pod is captured (a pod added again re-reads them).
  options.credentials = [svid_files](const runtime::Workload& w)
      -> absl::StatusOr<std::shared_ptr<identity::CredentialHolder>> {
    auto it = svid_files->find(w.uid);
    if (it == svid_files->end() || it->second.cert.empty()) {
      return absl::NotFoundError(absl::StrCat("no cert/key for ", w.uid, " in the config"));
    }
    absl::StatusOr<std::string> chain = examples::ReadFile(it->second.cert);
    if (!chain.ok()) return chain.status();
    absl::StatusOr<std::string> key = examples::ReadFile(it->second.key);
    if (!key.ok()) return key.status();
    auto creds = identity::Credentials::FromPem(*chain, *key);
    if (!creds.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(it->second.cert, ": ", creds.status().message()));
    }
    return std::make_shared<identity::CredentialHolder>(*creds);
  };
  if (!policy_path.empty() || !config->policies.empty()) {
    policies = std::make_shared<authz::PolicyStore>();
    if (absl::Status st = LoadPolicies(policy_path, policies.get(), config->policies); !st.ok()) {
      return Fail(std::string(st.message()));
    }
    options.policies = policies;
  }
  }  // !xds_mode
  options.log = Print;  // filtered by g_log_level
  auto metrics = std::make_shared<hbone::Metrics>();
  options.metrics = metrics;

  auto loop = runtime::EventLoop::New();
  if (!loop.ok()) return Fail(loop.status().ToString());
  // xDS mode: workloads, services and policies from istiod, each captured
  // pod's certificate from the Istio CA, the CA's roots as trust bundles.
  std::unique_ptr<xds::NodeControlPlane> control_plane;
  runtime::NodeProxy* proxy_ptr = nullptr;  // set once made; loop thread
  if (xds_mode) {
    policies = std::make_shared<authz::PolicyStore>();
    options.policies = policies;
    options.bundles = std::make_shared<identity::TrustBundleSource>();
    xds::NodeControlPlaneOptions cpo;
    cpo.xds.address = xds_address;
    cpo.xds.roots_pem_file = xds_root_cert;
    cpo.xds.token_file = token_file;
    cpo.xds.cluster_id = cluster_id;
    if (!ca_address.empty() && ca_address != xds_address) {
      cpo.ca = cpo.xds;
      cpo.ca->address = ca_address;
    }
    cpo.node = node;
    cpo.certificates.validity = ttl;
    cpo.workloads = directory.get();
    cpo.policies = policies.get();
    cpo.bundles = options.bundles;
    // ztunnel's policy watcher: open inbound connections checked again.
    cpo.on_policies_changed = [&proxy_ptr] {
      if (proxy_ptr != nullptr) proxy_ptr->RecheckPolicies();
    };
    auto cp = xds::NodeControlPlane::New(loop->get(), std::move(cpo));
    if (!cp.ok()) return Fail(absl::StrCat("--xds-address: ", cp.status().message()));
    control_plane = std::move(*cp);
    xds::NodeControlPlane* c = control_plane.get();
    options.credentials = c->CredentialsFunction();
    options.match_pod = [c](const std::string&, const netns::zds::WorkloadInfo& info) {
      return c->MatchPod(info.ns, info.name, info.service_account);
    };
    c->ads()->SetReadyCallback([c, directory, policies, xds_address] {
      Print(LogLevel::kInfo, "node-proxy",
            absl::StrCat("xDS: ready: ", directory->size(), " workload(s), ",
                         directory->service_count(), " service(s), ", policies->size(),
                         " policy(ies) from ", xds_address));
    });
  }
  // The DNS proxy, opened with the other listeners of every captured pod.
  std::shared_ptr<dns::DnsMetrics> dns_metrics;
  if (dns_on) {
    auto upstreams = dns::UpstreamsOrResolvConf(dns_upstream);
    if (!upstreams.ok()) {
      return Fail(absl::StrCat("DNS proxy: ", upstreams.status().message(),
                               " (--dns-upstream ip:port,... or --dns off)"));
    }
    std::string names;
    for (const ambient::SocketAddress& u : *upstreams) {
      absl::StrAppend(&names, names.empty() ? "" : ", ", u.ToString());
      if (absl::StartsWith(u.IpString(), "127.") || u.IpString() == "::1") {
        Print(LogLevel::kWarn, "node-proxy",
              absl::StrCat("DNS upstream ", u.ToString(),
                           " is a loopback address: forwarded queries leave from inside each "
                           "pod's netns and will not reach it (use --dns-upstream)"));
      }
    }
    dns_metrics = std::make_shared<dns::DnsMetrics>();
    dns::PodDnsOptions dns_options;
    dns_options.upstreams = std::move(*upstreams);
    dns_options.metrics = dns_metrics;
    dns_options.log = options.log;
    options.listeners.dns = true;
    options.pod_attach = dns::PodDnsAttach(loop->get(), directory, std::move(dns_options));
    Print(LogLevel::kInfo, "node-proxy",
          absl::StrCat("DNS proxy: 15053 UDP+TCP in every captured pod, upstream(s) ", names));
  } else {
    Print(LogLevel::kInfo, "node-proxy", "DNS proxy: off (--dns off)");
  }

  auto proxy = runtime::NodeProxy::New(loop->get(), std::move(options));
  if (!proxy.ok()) return Fail(proxy.status().ToString());
  proxy_ptr = proxy->get();

  std::unique_ptr<examples::MetricsServer> metrics_server;
  if (!metrics_addr.empty()) {
    examples::MetricsHandlers mh;
    mh.metrics = [metrics, dns_metrics, c = control_plane.get()] {
      std::string text = metrics->Prometheus();
      if (dns_metrics) absl::StrAppend(&text, dns_metrics->Prometheus());
      // With --xds-address: ztunnel's istio_xds_* (loop thread, like the client).
      if (c != nullptr) {
        absl::StrAppend(&text, xds::XdsPrometheus(c->ads()->stats(), c->ads()->streaming()));
      }
      return text;
    };
    mh.ready = [p = proxy->get(), c = control_plane.get()] {
      return p->zds() != nullptr && p->zds()->ready() && (c == nullptr || c->ready());
    };
    auto ms = examples::MetricsServer::New(loop->get(), metrics_addr, std::move(mh));
    if (!ms.ok())
      return Fail(absl::StrCat("--metrics ", metrics_addr, ": ", ms.status().message()));
    metrics_server = std::move(*ms);
    Print(LogLevel::kInfo, "node-proxy",
          absl::StrCat("metrics: http://", metrics_server->address().ToString(),
                       "/metrics, readiness: /healthz/ready"));
  }
  std::unique_ptr<examples::AdminServer> admin_server;
  if (!admin_addr.empty()) {
    examples::AdminHandlers ah;
    // Certificates: the captured pods' SVID files, read when asked (on the
    // loop thread, where svid_files is read and replaced).
    std::function<std::vector<examples::CertDump>()> certs;
    if (control_plane) {
      // From the Istio CA: every identity the certificate manager holds.
      certs = [c = control_plane.get()] {
        std::vector<examples::CertDump> out;
        for (const xds::CertStatus& st : c->CertificateStatus()) {
          examples::CertDump d;
          d.identity = st.id.str();
          d.state = st.state == xds::CertStatus::State::kAvailable      ? "Available"
                    : st.state == xds::CertStatus::State::kInitializing ? "Initializing"
                                                                         : "Unavailable: " + st.last_error;
          if (st.credentials) d.chain_pem = examples::ChainPem(*st.credentials);
          d.roots_pem = st.root_pem;
          out.push_back(std::move(d));
        }
        return out;
      };
    } else {
      certs = [svid_files, roots = trust_roots_pem, p = proxy->get()] {
        std::vector<examples::SvidFile> files;
        for (const runtime::PodInfo& pod : p->pods()) {
          auto it = svid_files->find(pod.uid);
          if (it != svid_files->end()) files.push_back({pod.identity.str(), it->second.cert});
        }
        return examples::CertDumpsFromFiles(files, roots);
      };
    }
    ah.config_dump = [directory, policies, certs] {
      return examples::RenderConfigDump({directory.get(), policies.get(), certs});
    };
    ah.log_level = [] { return g_log_level.load(); };
    ah.set_log_level = [](LogLevel level) {
      g_log_level = level;
      Print(LogLevel::kInfo, "node-proxy",
            absl::StrCat("log level set to ", examples::LogLevelName(level)));
    };
    ah.log = Print;  // a debug line per request
    auto as = examples::AdminServer::New(loop->get(), admin_addr, std::move(ah));
    if (!as.ok()) return Fail(absl::StrCat("--admin ", admin_addr, ": ", as.status().message()));
    admin_server = std::move(*as);
    std::string ip = admin_server->address().IpString();
    if (!absl::StartsWith(ip, "127.") && ip != "::1") {
      Print(LogLevel::kWarn, "node-proxy",
            "--admin is not a loopback address: whoever reaches it reads the whole config and "
            "changes the log level");
    }
    Print(LogLevel::kInfo, "node-proxy",
          absl::StrCat("admin: http://", admin_server->address().ToString(),
                       "/config_dump, log level: /logging"));
  }

  // SIGHUP re-reads the policy file on the loop (the handler only writes a byte).
  int hup[2];
  if (pipe2(hup, O_CLOEXEC | O_NONBLOCK) != 0) return Fail("pipe2 failed");
  g_hup_pipe = hup[1];
  runtime::IoWatch hup_watch(loop->get(), [&](uint32_t) {
    char buf[64];
    while (read(hup[0], buf, sizeof(buf)) > 0) {
    }
    if (xds_mode) {
      Print(LogLevel::kInfo, "node-proxy", "SIGHUP: nothing to read again (the mesh comes from xDS)");
      return;
    }
    // The workloads: upsert what the file lists now, forget the rest
    // (captured pods stay until the node agent deletes them).
    absl::StatusOr<examples::NodeConfig> next = examples::LoadNodeConfig(config_path);
    if (!next.ok()) {
      Print(LogLevel::kError, "node-proxy",
            absl::StrCat("SIGHUP: keeping the previous workloads and policies: ",
                         next.status().message()));
    } else {
      std::map<std::string, examples::PodConfig> files;
      for (const examples::PodConfig& pod : next->pods) files[pod.workload.uid] = pod;
      for (const runtime::Workload& w : directory->All()) {
        if (files.count(w.uid) == 0) directory->Remove(w.uid);
      }
      for (const auto& [uid, pod] : files) {
        if (absl::Status st = directory->Upsert(pod.workload); !st.ok()) {
          Print(LogLevel::kError, "node-proxy", absl::StrCat("SIGHUP: ", st.message()));
        }
      }
      *svid_files = std::move(files);
      LoadServices(directory.get(), next->services);
      Print(LogLevel::kInfo, "node-proxy",
            absl::StrCat("workloads: ", directory->size(), " from ", config_path,
                         " (services: ", directory->service_count(), ")"));
    }
    // A broken node config keeps the policies too (some may come from its
    // local config).
    if (!policies || !next.ok()) return;
    if (absl::Status st = LoadPolicies(policy_path, policies.get(), next->policies); !st.ok()) {
      Print(LogLevel::kError, "node-proxy",
            absl::StrCat("SIGHUP: keeping the previous policies: ", st.message()));
      return;
    }
    (*proxy)->RecheckPolicies();
  });
  if (absl::Status st = hup_watch.Start(hup[0], EPOLLIN); !st.ok()) return Fail(st.ToString());

  g_loop = loop->get();
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (control_plane) {
    control_plane->Start();
    Print(LogLevel::kInfo, "node-proxy",
          absl::StrCat("started: xDS and CA from ", xds_address,
                       ca_address.empty() ? "" : absl::StrCat(" (CA ", ca_address, ")"), " as node ",
                       node.node_name, " (", node.NodeId(), "), ZDS socket ", zds_socket));
  } else {
    Print(LogLevel::kInfo, "node-proxy",
          absl::StrCat("started: ", directory->size(), " workload(s) known, ZDS socket ",
                       zds_socket));
  }
  // ZDS runs on the loop; its "zds" lines go to the proxy's log.
  netns::zds::ZdsProxyOptions zo;
  zo.socket_path = zds_socket;
  // A pod handed over before its workload came from xDS, or before its
  // certificate was issued, is retried this often.
  if (control_plane) zo.retry_interval = absl::Seconds(1);
  if (absl::Status st = (*proxy)->StartZds(zo); !st.ok()) return Fail(st.ToString());
  (*loop)->Run();
  metrics_server.reset();
  admin_server.reset();
  proxy_ptr = nullptr;
  proxy->reset();  // closes ZDS and releases the pods, on this (the loop's) thread
  (*loop)->RunFor(absl::Milliseconds(10));
  control_plane.reset();  // after the pods: their certificate handles are released
  g_loop = nullptr;
  signal(SIGHUP, SIG_IGN);
  g_hup_pipe = -1;
  hup_watch.Stop();
  close(hup[0]);
  close(hup[1]);
  Print(LogLevel::kInfo, "node-proxy", "stopped");
  return 0;
}

// No exception (std::bad_alloc from a huge input, say) leaves main: it is
// reported like any other failure, exit 1.
int main(int argc, char** argv) {
  try {
    return RealMain(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "node-proxy: fatal: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "node-proxy: fatal: unknown exception\n");
  }
  return 1;
}
