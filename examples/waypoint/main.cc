// waypoint: an example waypoint built on ambient's public C++ API only. It
// shows that a proxy embedding the library can play the waypoint of Istio's
// ambient mode for L4 traffic:
//
//   pod A --HBONE--> waypoint:15008 --HBONE--> pod B:15008 --> app
//          :authority = VIP:port      :authority = podB_ip:target_port
//          (or pod B's IP:port)       identity = the waypoint's SVID
//
// For every CONNECT it accepts (mTLS, its own SVID), it
//  1. resolves the :authority in the directory (runtime::DecideAtWaypoint:
//     a service VIP:port -> an endpoint picked by ztunnel's rules; a
//     workload IP:port -> that workload; the service's waypoint, which is
//     us, is not taken again),
//  2. authorizes the stream as ztunnel would at the destination (L4 policy
//     of the chosen workload: source identity and IP, destination IP:port),
//     refusing with 401 otherwise,
//  3. opens a second HBONE tunnel to the chosen pod's 15008 with its own
//     identity (HboneServer's Upstream::Hbone: the 200 goes back to pod A
//     only once pod B answered 200), and relays bytes.
// Each leg writes a ztunnel-style access line: the inbound one (src = the
// calling pod, dst = the waypoint) and the outbound one (src = the
// waypoint, dst = the pod, dst.service).
//
// Policies: the waypoint checks every policy that applies to the
// destination (global, its namespace's, and those it selects), with the
// calling pod as the source, as ztunnel would at the pod. A policy meant to
// hold only at the pod itself, such as "allow only the waypoint's identity"
// (which makes a bypass of the waypoint fail), therefore belongs to the node
// proxy's --policy, not to what the waypoint reads.
//
// It reads the same node file as the example node proxy
// (examples/node/node_config.h, with its local_config: workloads, services,
// waypoints, policies); --workload names the waypoint's own entry, whose
// cert and key are the waypoint's SVID. Run it inside the waypoint pod's
// network namespace, e.g.
//   ip netns exec waypoint-pod waypoint --config node.json --workload pod-waypoint
#include <signal.h>
#include <time.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ambient/authz/policy_codec.h"
#include "ambient/authz/policy_store.h"
#include "ambient/hbone/tls_context.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/spiffe_id.h"
#include "ambient/identity/trust_bundle.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/hbone_proxy.h"
#include "ambient/runtime/outbound_decision.h"
#include "ambient/runtime/workload_directory.h"
#include "node_config.h"

namespace {

using namespace ambient;  // NOLINT: a small program

constexpr char kUsage[] =
    "usage: waypoint --config FILE --workload UID [--listen ADDR] [--policy FILE] [--verbose]\n"
    "\n"
    "An L4 waypoint: accepts HBONE on ADDR (default: the workload's first address,\n"
    "port 15008), picks the destination of each CONNECT's :authority (a service\n"
    "VIP:port or a workload IP:port) from the node file's directory, enforces the\n"
    "destination's authorization policies and carries the stream on over HBONE\n"
    "with the waypoint's own SVID.\n"
    "  --config FILE    the node file (examples/node/node_config.h) and its local_config\n"
    "  --workload UID   the waypoint's own entry in it (its cert and key: the SVID)\n"
    "  --listen ADDR    ip:port to listen on\n"
    "  --policy FILE    more Istio Authorization policies, {\"policies\": [...]} (JSON)\n"
    "  --verbose        also print debug lines\n"
    "Prints log and ztunnel-style access log lines on stdout; stops on SIGINT/SIGTERM.\n";

constexpr uint16_t kHbonePort = 15008;

std::mutex g_out_mu;
runtime::EventLoop* g_loop = nullptr;

// Print writes one line as the example node proxy does.
void Print(LogLevel level, absl::string_view component, absl::string_view message) {
  static const char* const kNames[] = {"debug", "info", "warn", "error"};
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char when[64];
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &t);
  std::lock_guard<std::mutex> lock(g_out_mu);
  std::printf("%s.%06ldZ  %-5s %s  %.*s\n", when, ts.tv_nsec / 1000,
              kNames[static_cast<int>(level)], std::string(component).c_str(),
              static_cast<int>(message.size()), message.data());
  std::fflush(stdout);
}

void OnSignal(int) {
  if (g_loop != nullptr) g_loop->Stop();
}

int Fail(const std::string& why) {
  std::fprintf(stderr, "waypoint: %s\n", why.c_str());
  return 1;
}

int Usage(const std::string& why) {
  std::fprintf(stderr, "waypoint: %s\n%s", why.c_str(), kUsage);
  return 2;
}

// Waypoint holds what the two callbacks of the HBONE server share. Both run
// on the loop, one right after the other for the same CONNECT: `authorize`
// decides where the stream goes and whether policy lets it, `route` hands
// the decision to the server.
struct Waypoint {
  runtime::Workload self;
  std::shared_ptr<runtime::WorkloadDirectory> directory;
  std::shared_ptr<authz::PolicyStore> policies;  // null: everything allowed
  runtime::HboneClient* client = nullptr;        // our SVID, towards the pods
  // The decision of the last `authorize`, taken by the next `route`.
  std::optional<runtime::OutboundRoute> decided;

  // Authorize picks the destination of `s` and checks its policies.
  absl::Status Authorize(const runtime::InboundStream& s) {
    decided.reset();
    absl::StatusOr<runtime::OutboundRoute> route =
        runtime::DecideAtWaypoint(directory->Read(), self, s.upstream, kHbonePort);
    // An unroutable :authority is refused by `route` (503), not here.
    if (!route.ok()) return absl::OkStatus();
    if (route->destination && policies) {
      // ztunnel-style L4 authorization of the destination workload: the
      // caller's identity and IP against the pod's IP and target port.
      authz::Connection conn;
      if (!s.peer.empty()) conn.src_ip = s.peer.ip();
      conn.src_port = static_cast<uint16_t>(s.peer.port());
      const ambient::SocketAddress& dst = route->kind == runtime::OutboundRoute::Kind::kHbone
                                              ? route->hbone_target
                                              : route->next_hop;
      if (!dst.empty()) conn.dst_ip = dst.ip();
      conn.dst_port = static_cast<uint16_t>(dst.port());
      if (auto id = identity::IstioIdentity::Parse(s.peer_identity.str()); id.ok()) {
        conn.src_identity = *id;
      }
      authz::Workload target;
      target.ns = route->destination->ns;
      target.policies = route->destination->policies;
      authz::Decision d = policies->Check(target, conn);
      if (!d.allowed) return absl::PermissionDeniedError(d.reason);
    }
    decided = *std::move(route);
    return absl::OkStatus();
  }

  // Route turns the decision into the server's upstream: another HBONE hop
  // (a mesh pod), or plain TCP (a workload outside the mesh).
  absl::StatusOr<runtime::Upstream> Route(const runtime::InboundStream& s) {
    if (!decided) {
      // Authorize let it through without a decision: say why now.
      absl::StatusOr<runtime::OutboundRoute> route =
          runtime::DecideAtWaypoint(directory->Read(), self, s.upstream, kHbonePort);
      if (!route.ok()) return route.status();
      decided = *std::move(route);
    }
    runtime::OutboundRoute route = *std::move(decided);
    decided.reset();
    if (route.kind == runtime::OutboundRoute::Kind::kPassthrough) return route.next_hop;
    runtime::TunnelTarget t;
    t.via = route.next_hop;
    t.authority = route.hbone_target.ToString();
    t.expected_identities = route.expected_identities;
    t.source_workload = self.Telemetry();  // sent as baggage: src of pod B's line
    if (route.destination) t.destination_workload = route.destination->Telemetry();
    t.destination_service = route.destination_service;
    return runtime::Upstream::Hbone(client, std::move(t));
  }

  // Annotate completes the inbound line: the calling pod's workload (from
  // the directory by its IP) and the service its :authority named.
  void Annotate(hbone::ConnectionRecord* r) const {
    absl::StatusOr<ambient::SocketAddress> src = ambient::SocketAddress::Parse(r->src_addr);
    if (src.ok()) {
      if (std::optional<runtime::Workload> w = directory->ByAddress(src->IpString())) {
        hbone::WorkloadInfo known = w->Telemetry();
        known.Merge(r->src);
        r->src = std::move(known);
      }
    }
    absl::StatusOr<ambient::SocketAddress> target =
        ambient::SocketAddress::Parse(r->dst_hbone_addr);
    if (!target.ok()) return;
    if (std::optional<runtime::Service> svc =
            directory->ServiceByVip(runtime::NetworkAddress{self.network, target->ip()}, self.ns)) {
      r->dst_service = svc->hostname;
    }
  }
};

absl::StatusOr<std::shared_ptr<identity::CredentialHolder>> LoadSvid(
    const examples::PodConfig& pod) {
  if (pod.cert.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("workload ", pod.workload.uid, " has no cert/key in the config"));
  }
  absl::StatusOr<std::string> chain = examples::ReadFile(pod.cert);
  if (!chain.ok()) return chain.status();
  absl::StatusOr<std::string> key = examples::ReadFile(pod.key);
  if (!key.ok()) return key.status();
  auto creds = identity::Credentials::FromPem(*chain, *key);
  if (!creds.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(pod.cert, ": ", creds.status().message()));
  }
  return std::make_shared<identity::CredentialHolder>(*creds);
}

int RealMain(int argc, char** argv) {
  std::string config_path, uid, listen, policy_path;
  bool verbose = false;
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
    } else if (arg == "--workload") {
      if (!value(&uid)) return Usage("--workload needs a value");
    } else if (arg == "--listen") {
      if (!value(&listen)) return Usage("--listen needs a value");
      if (!ambient::SocketAddress::Parse(listen).ok()) {
        return Usage(absl::StrCat("--listen: \"", listen, "\" is not ip:port"));
      }
    } else if (arg == "--policy") {
      if (!value(&policy_path)) return Usage("--policy needs a value");
    } else if (arg == "--verbose") {
      verbose = true;
    } else {
      return Usage(absl::StrCat("unknown argument \"", arg, "\""));
    }
  }
  if (config_path.empty()) return Usage("--config is required");
  if (uid.empty()) return Usage("--workload is required");

  // The directory: every workload and service of the node file.
  absl::StatusOr<examples::NodeConfig> config = examples::LoadNodeConfig(config_path);
  if (!config.ok()) return Fail(std::string(config.status().message()));
  auto wp = std::make_shared<Waypoint>();
  wp->directory = std::make_shared<runtime::WorkloadDirectory>();
  const examples::PodConfig* me = nullptr;
  for (const examples::PodConfig& pod : config->pods) {
    if (absl::Status st = wp->directory->Upsert(pod.workload); !st.ok()) {
      return Fail(std::string(st.message()));
    }
    if (pod.workload.uid == uid) me = &pod;
  }
  for (const runtime::Service& s : config->services) {
    if (absl::Status st = wp->directory->UpsertService(s); !st.ok()) {
      return Fail(std::string(st.message()));
    }
  }
  if (me == nullptr) return Fail(absl::StrCat("--workload ", uid, ": not in ", config_path));
  wp->self = me->workload;
  if (listen.empty()) {
    if (wp->self.addresses.empty()) return Fail(absl::StrCat(uid, " has no address"));
    absl::StatusOr<ambient::SocketAddress> parsed =
        ambient::SocketAddress::ParseIp(wp->self.addresses[0], kHbonePort);
    if (!parsed.ok()) return Fail(std::string(parsed.status().message()));
    listen = parsed->ToString();
  }

  // Authorization: the node file's policies, then --policy's.
  std::vector<authz::Policy> policies = config->policies;
  if (!policy_path.empty()) {
    absl::StatusOr<std::string> text = examples::ReadFile(policy_path);
    if (!text.ok()) return Fail(std::string(text.status().message()));
    absl::StatusOr<std::vector<authz::Policy>> more = authz::DecodePolicyListJson(*text);
    if (!more.ok()) return Fail(absl::StrCat(policy_path, ": ", more.status().message()));
    policies.insert(policies.end(), more->begin(), more->end());
  }
  if (!policies.empty()) {
    wp->policies = std::make_shared<authz::PolicyStore>();
    if (absl::Status st = wp->policies->Replace(std::move(policies)); !st.ok()) {
      return Fail(std::string(st.message()));
    }
  }

  // Our SVID and the trust bundle, for both legs.
  absl::StatusOr<identity::SpiffeId> self_id = wp->self.Identity();
  if (!self_id.ok()) return Fail(absl::StrCat(uid, ": ", self_id.status().message()));
  absl::StatusOr<identity::TrustDomain> td = identity::TrustDomain::Parse(config->trust_domain);
  if (!td.ok()) return Fail(absl::StrCat("trust_domain: ", td.status().message()));
  absl::StatusOr<std::string> roots = examples::ReadFile(config->trust_bundle);
  if (!roots.ok()) return Fail(std::string(roots.status().message()));
  auto bundle = identity::TrustBundle::FromPem(*td, *roots);
  if (!bundle.ok()) {
    return Fail(absl::StrCat(config->trust_bundle, ": ", bundle.status().message()));
  }
  auto set = identity::TrustBundleSet::Create({*bundle});
  if (!set.ok()) return Fail(std::string(set.status().message()));
  auto bundles = std::make_shared<identity::TrustBundleSource>(*set);
  absl::StatusOr<std::shared_ptr<identity::CredentialHolder>> svid = LoadSvid(*me);
  if (!svid.ok()) return Fail(std::string(svid.status().message()));
  auto server_ctx = hbone::NewServerContext(*svid, bundles);
  if (!server_ctx.ok()) return Fail(server_ctx.status().ToString());
  auto client_ctx = hbone::NewClientContext(*svid, bundles);
  if (!client_ctx.ok()) return Fail(client_ctx.status().ToString());

  LogSink log = [verbose](LogLevel level, absl::string_view c, absl::string_view m) {
    if (level != LogLevel::kDebug || verbose) Print(level, c, m);
  };
  auto loop = runtime::EventLoop::New();
  if (!loop.ok()) return Fail(loop.status().ToString());

  // The outbound leg: towards the pods' 15008, as ourselves.
  runtime::ClientOptions co;
  co.ssl_ctx = client_ctx->get();
  co.bundles = bundles;
  co.identity = *self_id;
  co.log = log;
  auto client = runtime::HboneClient::New(loop->get(), std::move(co));
  if (!client.ok()) return Fail(client.status().ToString());
  wp->client = client->get();

  // The inbound leg: HBONE from the pods' node proxies.
  runtime::ServerOptions so;
  so.listen = listen;
  so.ssl_ctx = server_ctx->get();
  so.identity = *self_id;
  so.workload = wp->self.Telemetry();
  so.log = log;
  so.authorize = [wp](const runtime::InboundStream& s) { return wp->Authorize(s); };
  so.route = [wp](const runtime::InboundStream& s) { return wp->Route(s); };
  so.annotate = [wp](hbone::ConnectionRecord* r) { wp->Annotate(r); };
  auto server = runtime::HboneServer::New(loop->get(), std::move(so));
  if (!server.ok()) return Fail(absl::StrCat("--listen ", listen, ": ", server.status().message()));

  g_loop = loop->get();
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  Print(LogLevel::kInfo, "waypoint",
        absl::StrCat("started: ", wp->self.ns, "/", wp->self.name, " (", self_id->str(), ") on ",
                     (*server)->address().ToString(), "; ", wp->directory->size(), " workload(s), ",
                     wp->directory->service_count(), " service(s) known"));
  (*loop)->Run();
  // The server goes first (it uses the client), then the client.
  server->reset();
  client->reset();
  (*loop)->RunFor(absl::Milliseconds(10));
  g_loop = nullptr;
  Print(LogLevel::kInfo, "waypoint", "stopped");
  return 0;
}

}  // namespace

// No exception (std::bad_alloc from a huge input, say) leaves main: it is
// reported like any other failure, exit 1.
int main(int argc, char** argv) {
  try {
    return RealMain(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "waypoint: fatal: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "waypoint: fatal: unknown exception\n");
  }
  return 1;
}
