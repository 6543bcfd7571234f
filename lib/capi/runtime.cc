// C ABI shims for the runtime layer (ambient/c/runtime.h).
#include "ambient/c/runtime.h"
#include "ambient/c/xds.h"

#include <openssl/ssl.h>

#include <array>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "ambient/authz/policy_codec.h"
#include "ambient/dns/pod_dns.h"
#include "ambient/dns/server.h"
#include "ambient/hbone/authority.h"
#include "ambient/hbone/baggage.h"
#include "ambient/hbone/telemetry.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/trust_bundle.h"
#include "ambient/netns/netns.h"
#include "ambient/netns/zds.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/hbone_proxy.h"
#include "ambient/runtime/node_proxy.h"
#include "ambient/xds/node_control_plane.h"
#include "capi/internal.h"

using ambient::capi::Guard;
using ambient::capi::GuardCode;
using ambient::capi::NullArgument;
namespace rt = ambient::runtime;

struct ambient_runtime_loop {
  std::unique_ptr<rt::EventLoop> loop;
};

rt::EventLoop* ambient::capi::LoopOf(ambient_runtime_loop* loop) { return loop->loop.get(); }

// A host's log callback may not be called once the object it was given to
// is freed, but connections aborted by the free still end (and log their
// access line) on the loop's next iteration: the gate is closed after the
// free and drops those lines.
using LogGate = std::shared_ptr<std::atomic<bool>>;

struct ambient_hbone_server {
  LogGate log_open = std::make_shared<std::atomic<bool>>(true);
  std::unique_ptr<rt::HboneServer> server;
  std::shared_ptr<ambient::hbone::Metrics> metrics;
  std::string address;
  rt::ServerLimits limits;  // what set_limit last gave the server (defaults first)
};

struct ambient_hbone_server_options {
  std::string listen;
  std::vector<std::string> allow;
  ambient::LogSink log;
};

struct ambient_hbone_client_options {
  ambient::LogSink log;
};

struct ambient_hbone_target {
  std::string via;
  std::string authority;
  std::vector<std::string> expected;
};

struct ambient_hbone_client {
  LogGate log_open = std::make_shared<std::atomic<bool>>(true);
  std::unique_ptr<rt::HboneClient> client;
  ambient::hbone::WorkloadInfo source_workload;  // for tunnels and forwarders made later
};

struct ambient_hbone_forwarder {
  std::unique_ptr<rt::HboneForwarder> forwarder;
  std::string address;
};

struct ambient_node_proxy_options {
  std::shared_ptr<rt::WorkloadDirectory> workloads = std::make_shared<rt::WorkloadDirectory>();
  std::shared_ptr<const ambient::identity::TrustBundleSet> bundles =
      ambient::identity::TrustBundleSet::Empty();
  std::map<std::string, std::shared_ptr<const ambient::identity::Credentials>> svids;  // by uid
  // Made anew by every set_policies_json and never changed afterwards, so
  // proxies made earlier keep the set they were made with. Null: allow all.
  std::shared_ptr<ambient::authz::PolicyStore> policies;
  ambient::LogSink log;
  std::vector<ambient::SocketAddress> dns_upstreams;  // non-empty: the DNS proxy is on
  std::optional<ambient_xds_options> xds;  // set: the mesh and certificates come from istiod
};

struct ambient_node_proxy {
  LogGate log_open = std::make_shared<std::atomic<bool>>(true);
  // With xDS: what the control plane fills (it borrows them), and the
  // control plane itself, which goes after the proxy (the pods' certificate
  // handles are released into it).
  std::shared_ptr<rt::WorkloadDirectory> xds_workloads;
  std::shared_ptr<ambient::authz::PolicyStore> xds_policies;
  std::unique_ptr<ambient::xds::NodeControlPlane> control_plane;
  std::unique_ptr<rt::NodeProxy> proxy;
  ambient::LogSink log;
  std::shared_ptr<ambient::dns::DnsMetrics> dns_metrics;  // set when DNS is on
  ~ambient_node_proxy() {
    proxy.reset();
    control_plane.reset();
    log_open->store(false);
  }
};

namespace {

// Gated passes lines to `sink` while `gate` is open.
ambient::LogSink Gated(ambient::LogSink sink, const LogGate& gate) {
  if (!sink) return nullptr;
  return [sink = std::move(sink), gate](ambient::LogLevel level, absl::string_view component,
                                        absl::string_view msg) {
    if (gate->load()) sink(level, component, msg);
  };
}

// BaggageOf reads the telemetry fields of `info` and checks them with
// hbone::CheckWorkloadInfo.
absl::StatusOr<ambient::hbone::WorkloadInfo> BaggageOf(const ambient_workload_info& info) {
  ambient::hbone::WorkloadInfo w;
  w.name = info.at(AMBIENT_WORKLOAD_NAME);
  w.workload_type = info.at(AMBIENT_WORKLOAD_TYPE);
  w.ns = info.at(AMBIENT_WORKLOAD_NAMESPACE);
  w.canonical_service = info.at(AMBIENT_WORKLOAD_CANONICAL_SERVICE);
  w.canonical_revision = info.at(AMBIENT_WORKLOAD_CANONICAL_REVISION);
  w.cluster = info.at(AMBIENT_WORKLOAD_CLUSTER);
  w.region = info.at(AMBIENT_WORKLOAD_REGION);
  w.zone = info.at(AMBIENT_WORKLOAD_ZONE);
  if (absl::Status s = ambient::hbone::CheckWorkloadInfo(w); !s.ok()) return s;
  return w;
}

// TargetOf checks `target` (a malformed address is the caller's error now,
// not a failure reported later) and converts it.
absl::StatusOr<rt::TunnelTarget> TargetOf(const ambient_hbone_target& target,
                                          const ambient::hbone::WorkloadInfo& source) {
  if (target.via.empty()) return absl::InvalidArgumentError("the target has no via address");
  if (target.authority.empty()) return absl::InvalidArgumentError("the target has no authority");
  absl::StatusOr<ambient::SocketAddress> via = ambient::SocketAddress::Parse(target.via);
  if (!via.ok()) return via.status();
  if (absl::StatusOr<ambient::hbone::Authority> a =
          ambient::hbone::ParseAuthority(target.authority);
      !a.ok()) {
    return a.status();
  }
  rt::TunnelTarget t;
  t.via = *via;
  t.authority = target.authority;
  absl::StatusOr<std::vector<ambient::identity::SpiffeId>> expected =
      ambient::identity::ParseSpiffeIdList(target.expected, "expected");
  if (!expected.ok()) return expected.status();
  t.expected_identities = *std::move(expected);
  t.source_workload = source;
  return t;
}

// SetText stores `value` in `*field`; NULL is an error naming `name`.
absl::Status SetText(std::string* field, const char* value, const char* name) {
  if (value == nullptr) return NullArgument(name);
  *field = value;
  return absl::OkStatus();
}

// WireXds makes the node proxy `p` run from istiod as `opts.xds` says, as
// examples/node-proxy does with --xds-address: the directory and policy
// store filled over xDS, certificates from the CA, pods matched among this
// node's workloads, policies re-checked after each push.
absl::Status WireXds(ambient_runtime_loop* loop, const ambient_node_proxy_options& opts,
                     ambient_node_proxy* p, rt::NodeProxyOptions* o) {
  namespace xds = ambient::xds;
  if (opts.workloads->size() > 0 || !opts.svids.empty() || opts.policies) {
    return absl::InvalidArgumentError(
        "node proxy options with xDS take workloads, SVIDs and policies from istiod: "
        "add none of them");
  }
  p->xds_workloads = std::make_shared<rt::WorkloadDirectory>();
  p->xds_policies = std::make_shared<ambient::authz::PolicyStore>();
  o->workloads = p->xds_workloads;
  o->policies = p->xds_policies;
  xds::NodeControlPlaneOptions cpo;
  cpo.xds = opts.xds->connection;
  if (!opts.xds->ca_address.empty() && opts.xds->ca_address != cpo.xds.address) {
    cpo.ca = cpo.xds;
    cpo.ca->address = opts.xds->ca_address;
  }
  cpo.node = opts.xds->node;
  cpo.workloads = p->xds_workloads.get();
  cpo.policies = p->xds_policies.get();
  cpo.bundles = o->bundles;
  // ztunnel's policy watcher: open inbound connections checked again.
  cpo.on_policies_changed = [p] {
    if (p->proxy) p->proxy->RecheckPolicies();
  };
  auto cp = xds::NodeControlPlane::New(loop->loop.get(), std::move(cpo));
  if (!cp.ok()) return cp.status();
  p->control_plane = std::move(*cp);
  xds::NodeControlPlane* c = p->control_plane.get();
  o->credentials = c->CredentialsFunction();
  o->match_pod = [c](const std::string&, const ambient::netns::zds::WorkloadInfo& info) {
    return c->MatchPod(info.ns, info.name, info.service_account);
  };
  return absl::OkStatus();
}

}  // namespace

extern "C" {

ambient_error* ambient_runtime_loop_new(ambient_runtime_loop** out) {
  return Guard([&]() -> absl::Status {
    if (out == nullptr) return NullArgument("out");
    absl::StatusOr<std::unique_ptr<rt::EventLoop>> loop = rt::EventLoop::New();
    if (!loop.ok()) return loop.status();
    auto l = std::make_unique<ambient_runtime_loop>();
    l->loop = std::move(*loop);
    *out = l.release();
    return absl::OkStatus();
  });
}

void ambient_runtime_loop_free(ambient_runtime_loop* loop) {
  try {
    delete loop;
  } catch (...) {
    // Nothing here throws; nothing may cross into C regardless.
  }
}

int ambient_runtime_loop_post(ambient_runtime_loop* loop, void (*fn)(void* user), void* user) {
  return GuardCode([&]() -> int {
    if (loop == nullptr || fn == nullptr) return AMBIENT_ERR_INVALID_ARGUMENT;
    loop->loop->PostMustRun([fn, user] { fn(user); });
    return 0;
  });
}

void ambient_runtime_loop_run(ambient_runtime_loop* loop) {
  if (loop == nullptr) return;
  GuardCode([&] {
    loop->loop->Run();
    return 0;
  });
}

void ambient_runtime_loop_run_for(ambient_runtime_loop* loop, uint64_t ms) {
  if (loop == nullptr) return;
  GuardCode([&] {
    loop->loop->RunFor(absl::Milliseconds(static_cast<int64_t>(ms > INT32_MAX ? INT32_MAX : ms)));
    return 0;
  });
}

void ambient_runtime_loop_stop(ambient_runtime_loop* loop) {
  if (loop != nullptr) loop->loop->Stop();
}

ambient_hbone_server_options* ambient_hbone_server_options_new(void) {
  return ambient::capi::NewOrNull<ambient_hbone_server_options>();
}

void ambient_hbone_server_options_free(ambient_hbone_server_options* opts) { delete opts; }

ambient_error* ambient_hbone_server_options_set_listen(ambient_hbone_server_options* opts,
                                                       const char* listen) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    return SetText(&opts->listen, listen, "listen");
  });
}

ambient_error* ambient_hbone_server_options_add_allow(ambient_hbone_server_options* opts,
                                                      const char* spiffe_id) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (spiffe_id == nullptr) return NullArgument("spiffe_id");
    opts->allow.emplace_back(spiffe_id);
    return absl::OkStatus();
  });
}

void ambient_hbone_server_options_set_log(ambient_hbone_server_options* opts, ambient_log_fn log,
                                          void* log_user) {
  if (opts != nullptr) ambient::capi::SetLogSink(&opts->log, log, log_user);
}

ambient_error* ambient_hbone_server_new(ambient_runtime_loop* loop, const ambient_hbone_tls* tls,
                                        const ambient_hbone_server_options* opts,
                                        ambient_hbone_server** out) {
  return Guard([&]() -> absl::Status {
    if (loop == nullptr) return NullArgument("loop");
    if (tls == nullptr) return NullArgument("tls");
    if (opts == nullptr) return NullArgument("opts");
    if (out == nullptr) return NullArgument("out");
    if (opts->listen.empty()) return absl::InvalidArgumentError("no listen address set");
    if (!ambient::capi::HboneTlsIsServer(tls)) {
      return absl::InvalidArgumentError("an HBONE server needs a server-role tls");
    }
    rt::ServerOptions o;
    o.listen = opts->listen;
    o.ssl_ctx = ambient::capi::HboneTlsContext(tls);
    absl::StatusOr<std::vector<ambient::identity::SpiffeId>> allow =
        ambient::identity::ParseSpiffeIdList(opts->allow, "allow");
    if (!allow.ok()) return allow.status();
    o.allow = *std::move(allow);
    LogGate gate = std::make_shared<std::atomic<bool>>(true);
    o.log = Gated(opts->log, gate);
    auto metrics = std::make_shared<ambient::hbone::Metrics>();
    o.metrics = metrics;
    rt::ServerLimits limits = o.limits;
    absl::StatusOr<std::unique_ptr<rt::HboneServer>> server =
        rt::HboneServer::New(loop->loop.get(), std::move(o));
    if (!server.ok()) return server.status();
    auto s = std::make_unique<ambient_hbone_server>();
    s->log_open = gate;
    s->address = (*server)->address().ToString();
    s->server = std::move(*server);
    s->metrics = std::move(metrics);
    s->limits = limits;
    *out = s.release();
    return absl::OkStatus();
  });
}

const char* ambient_hbone_server_get0_address(const ambient_hbone_server* server) {
  return server == nullptr ? "" : server->address.c_str();
}

size_t ambient_hbone_server_metrics(const ambient_hbone_server* server, char* buf, size_t len) {
  if (server == nullptr) return 0;
  std::string text;
  try {
    text = server->metrics->Prometheus();
  } catch (...) {
    return 0;
  }
  return ambient::capi::CopyToBuffer(text, buf, len);
}

void ambient_hbone_server_free(ambient_hbone_server* server) {
  if (server == nullptr) return;
  server->server.reset();
  server->log_open->store(false);
  delete server;
}

ambient_hbone_client_options* ambient_hbone_client_options_new(void) {
  return ambient::capi::NewOrNull<ambient_hbone_client_options>();
}

void ambient_hbone_client_options_free(ambient_hbone_client_options* opts) { delete opts; }

void ambient_hbone_client_options_set_log(ambient_hbone_client_options* opts, ambient_log_fn log,
                                          void* log_user) {
  if (opts != nullptr) ambient::capi::SetLogSink(&opts->log, log, log_user);
}

ambient_error* ambient_hbone_client_new(ambient_runtime_loop* loop, const ambient_hbone_tls* tls,
                                        const ambient_hbone_client_options* opts,
                                        ambient_hbone_client** out) {
  return Guard([&]() -> absl::Status {
    if (loop == nullptr) return NullArgument("loop");
    if (tls == nullptr) return NullArgument("tls");
    if (opts == nullptr) return NullArgument("opts");
    if (out == nullptr) return NullArgument("out");
    if (ambient::capi::HboneTlsIsServer(tls)) {
      return absl::InvalidArgumentError("an HBONE client needs a client-role tls");
    }
    rt::ClientOptions o;
    o.ssl_ctx = ambient::capi::HboneTlsContext(tls);
    o.bundles = ambient::capi::HboneTlsBundles(tls);
    if (const std::string& own = ambient::capi::HboneTlsIdentity(tls); !own.empty()) {
      // The tls's certificate was checked when it was loaded.
      if (auto id = ambient::identity::SpiffeId::Parse(own); id.ok()) o.identity = *std::move(id);
    }
    LogGate gate = std::make_shared<std::atomic<bool>>(true);
    o.log = Gated(opts->log, gate);
    absl::StatusOr<std::unique_ptr<rt::HboneClient>> client =
        rt::HboneClient::New(loop->loop.get(), std::move(o));
    if (!client.ok()) return client.status();
    auto c = std::make_unique<ambient_hbone_client>();
    c->log_open = gate;
    c->client = std::move(*client);
    *out = c.release();
    return absl::OkStatus();
  });
}

ambient_hbone_target* ambient_hbone_target_new(void) {
  return ambient::capi::NewOrNull<ambient_hbone_target>();
}

void ambient_hbone_target_free(ambient_hbone_target* target) { delete target; }

ambient_error* ambient_hbone_target_set_via(ambient_hbone_target* target, const char* via) {
  return Guard([&]() -> absl::Status {
    if (target == nullptr) return NullArgument("target");
    return SetText(&target->via, via, "via");
  });
}

ambient_error* ambient_hbone_target_set_authority(ambient_hbone_target* target,
                                                  const char* authority) {
  return Guard([&]() -> absl::Status {
    if (target == nullptr) return NullArgument("target");
    return SetText(&target->authority, authority, "authority");
  });
}

ambient_error* ambient_hbone_target_add_expected(ambient_hbone_target* target,
                                                 const char* spiffe_id) {
  return Guard([&]() -> absl::Status {
    if (target == nullptr) return NullArgument("target");
    if (spiffe_id == nullptr) return NullArgument("spiffe_id");
    target->expected.emplace_back(spiffe_id);
    return absl::OkStatus();
  });
}

int ambient_hbone_client_tunnel(ambient_hbone_client* client, const ambient_hbone_target* target,
                                int in_fd, int out_fd, ambient_hbone_tunnel_done_fn done,
                                void* done_user) {
  return GuardCode([&]() -> int {
    if (client == nullptr || target == nullptr || in_fd < 0 || out_fd < 0) {
      return AMBIENT_ERR_INVALID_ARGUMENT;
    }
    absl::StatusOr<rt::TunnelTarget> t = TargetOf(*target, client->source_workload);
    if (!t.ok()) return AMBIENT_ERR_INVALID_ARGUMENT;
    client->client->Tunnel(
        *t, in_fd, out_fd, /*owns_fds=*/false, [done, done_user](const rt::TunnelResult& r) {
          if (done == nullptr) return;
          std::string msg(r.status.message());
          done(done_user, ambient::capi::ToCode(r.status), r.http_status, msg.c_str());
        });
    return 0;
  });
}

ambient_error* ambient_hbone_server_set_workload(ambient_hbone_server* server,
                                                 const ambient_workload_info* workload) {
  return Guard([&]() -> absl::Status {
    if (server == nullptr) return NullArgument("server");
    if (workload == nullptr) return NullArgument("workload");
    absl::StatusOr<ambient::hbone::WorkloadInfo> w = BaggageOf(*workload);
    if (!w.ok()) return w.status();
    server->server->SetWorkload(*w);
    return absl::OkStatus();
  });
}

ambient_error* ambient_hbone_server_set_limit(ambient_hbone_server* server,
                                              ambient_hbone_limit which, uint64_t value) {
  int index;
  std::memcpy(&index, &which, sizeof(index));
  return Guard([&]() -> absl::Status {
    if (server == nullptr) return NullArgument("server");
    rt::ServerLimits l = server->limits;
    switch (index) {
      case AMBIENT_HBONE_MAX_CONNECTIONS:
        l.max_connections = value;
        break;
      case AMBIENT_HBONE_MAX_HANDSHAKES:
        l.max_handshakes = value;
        break;
      case AMBIENT_HBONE_SILENT_TIMEOUT_MS:
        if (value > INT32_MAX) return absl::InvalidArgumentError("silent timeout too long");
        l.silent_timeout = absl::Milliseconds(static_cast<int64_t>(value));
        break;
      case AMBIENT_HBONE_MAX_PENDING_DIALS_PER_CONNECTION:
        l.max_pending_dials_per_connection = value;
        break;
      case AMBIENT_HBONE_MAX_PENDING_DIALS_PER_IDENTITY:
        l.max_pending_dials_per_identity = value;
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat("unknown HBONE limit ", index));
    }
    server->server->SetLimits(l);
    server->limits = l;
    return absl::OkStatus();
  });
}

ambient_error* ambient_hbone_client_set_source_workload(ambient_hbone_client* client,
                                                        const ambient_workload_info* workload) {
  return Guard([&]() -> absl::Status {
    if (client == nullptr) return NullArgument("client");
    if (workload == nullptr) return NullArgument("workload");
    absl::StatusOr<ambient::hbone::WorkloadInfo> w = BaggageOf(*workload);
    if (!w.ok()) return w.status();
    client->source_workload = *std::move(w);
    return absl::OkStatus();
  });
}

void ambient_hbone_client_free(ambient_hbone_client* client) {
  if (client == nullptr) return;
  client->client.reset();
  client->log_open->store(false);
  delete client;
}

ambient_error* ambient_hbone_forwarder_new(ambient_runtime_loop* loop, ambient_hbone_client* client,
                                           const char* listen, const ambient_hbone_target* target,
                                           ambient_hbone_forwarder** out) {
  return Guard([&]() -> absl::Status {
    if (loop == nullptr) return NullArgument("loop");
    if (client == nullptr) return NullArgument("client");
    if (listen == nullptr) return NullArgument("listen");
    if (target == nullptr) return NullArgument("target");
    if (out == nullptr) return NullArgument("out");
    absl::StatusOr<rt::TunnelTarget> t = TargetOf(*target, client->source_workload);
    if (!t.ok()) return t.status();
    rt::ForwarderOptions o;
    o.listen = listen;
    o.target = *std::move(t);
    absl::StatusOr<std::unique_ptr<rt::HboneForwarder>> fwd =
        rt::HboneForwarder::New(loop->loop.get(), client->client.get(), std::move(o));
    if (!fwd.ok()) return fwd.status();
    auto f = std::make_unique<ambient_hbone_forwarder>();
    f->address = (*fwd)->address().ToString();
    f->forwarder = std::move(*fwd);
    *out = f.release();
    return absl::OkStatus();
  });
}

const char* ambient_hbone_forwarder_get0_address(const ambient_hbone_forwarder* forwarder) {
  return forwarder == nullptr ? "" : forwarder->address.c_str();
}

void ambient_hbone_forwarder_free(ambient_hbone_forwarder* forwarder) { delete forwarder; }

ambient_node_proxy_options* ambient_node_proxy_options_new(void) {
  return ambient::capi::NewOrNull<ambient_node_proxy_options>();
}

void ambient_node_proxy_options_free(ambient_node_proxy_options* opts) { delete opts; }

ambient_error* ambient_node_proxy_options_add_workload(ambient_node_proxy_options* opts,
                                                       const ambient_workload_info* workload) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (workload == nullptr) return NullArgument("workload");
    rt::Workload w;
    w.uid = workload->at(AMBIENT_WORKLOAD_UID);
    w.name = workload->at(AMBIENT_WORKLOAD_NAME);
    w.ns = workload->at(AMBIENT_WORKLOAD_NAMESPACE);
    if (!workload->at(AMBIENT_WORKLOAD_SERVICE_ACCOUNT).empty()) {
      w.service_account = workload->at(AMBIENT_WORKLOAD_SERVICE_ACCOUNT);
    }
    if (!workload->at(AMBIENT_WORKLOAD_TRUST_DOMAIN).empty()) {
      w.trust_domain = workload->at(AMBIENT_WORKLOAD_TRUST_DOMAIN);
    }
    w.canonical_service = workload->at(AMBIENT_WORKLOAD_CANONICAL_SERVICE);
    w.canonical_revision = workload->at(AMBIENT_WORKLOAD_CANONICAL_REVISION);
    w.cluster = workload->at(AMBIENT_WORKLOAD_CLUSTER);
    w.addresses = workload->addresses;
    w.hbone = workload->hbone;
    return opts->workloads->Upsert(std::move(w));
  });
}

ambient_error* ambient_node_proxy_options_add_trust_bundle_pem(ambient_node_proxy_options* opts,
                                                               const char* trust_domain,
                                                               const char* pem, size_t len) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (trust_domain == nullptr) return NullArgument("trust_domain");
    if (pem == nullptr) return NullArgument("pem");
    absl::StatusOr<ambient::identity::TrustDomain> td =
        ambient::identity::TrustDomain::Parse(trust_domain);
    if (!td.ok()) return td.status();
    auto bundle = ambient::identity::TrustBundle::FromPem(*td, absl::string_view(pem, len));
    if (!bundle.ok()) return bundle.status();
    opts->bundles = opts->bundles->With(*bundle);
    return absl::OkStatus();
  });
}

ambient_error* ambient_node_proxy_options_set_svid_pem(ambient_node_proxy_options* opts,
                                                       const char* uid, const char* chain_pem,
                                                       size_t chain_len, const char* key_pem,
                                                       size_t key_len) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (uid == nullptr) return NullArgument("uid");
    if (chain_pem == nullptr) return NullArgument("chain_pem");
    if (key_pem == nullptr) return NullArgument("key_pem");
    auto creds = ambient::identity::Credentials::FromPem(absl::string_view(chain_pem, chain_len),
                                                         absl::string_view(key_pem, key_len));
    if (!creds.ok()) return creds.status();
    opts->svids[uid] = *creds;
    return absl::OkStatus();
  });
}

ambient_error* ambient_node_proxy_options_set_policies_json(ambient_node_proxy_options* opts,
                                                            const char* json, size_t len) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (json == nullptr) return NullArgument("json");
    auto policies = ambient::authz::DecodePolicyListJson(absl::string_view(json, len));
    if (!policies.ok()) return policies.status();
    auto store = std::make_shared<ambient::authz::PolicyStore>();
    if (absl::Status s = store->Replace(*std::move(policies)); !s.ok()) return s;
    opts->policies = std::move(store);
    return absl::OkStatus();
  });
}

ambient_error* ambient_node_proxy_options_set_dns(ambient_node_proxy_options* opts,
                                                  const char* upstreams) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    absl::StatusOr<std::vector<ambient::SocketAddress>> list =
        ambient::dns::UpstreamsOrResolvConf(upstreams == nullptr ? "" : upstreams);
    if (!list.ok()) return list.status();
    opts->dns_upstreams = std::move(*list);
    return absl::OkStatus();
  });
}

void ambient_node_proxy_options_set_log(ambient_node_proxy_options* opts, ambient_log_fn log,
                                        void* log_user) {
  if (opts != nullptr) ambient::capi::SetLogSink(&opts->log, log, log_user);
}

ambient_error* ambient_node_proxy_new(ambient_runtime_loop* loop,
                                      const ambient_node_proxy_options* opts,
                                      ambient_node_proxy** out) {
  return Guard([&]() -> absl::Status {
    if (loop == nullptr) return NullArgument("loop");
    if (opts == nullptr) return NullArgument("opts");
    if (out == nullptr) return NullArgument("out");
    rt::NodeProxyOptions o;
    o.workloads = opts->workloads->Clone();  // later changes to `opts` do not reach the proxy
    o.bundles = std::make_shared<ambient::identity::TrustBundleSource>(opts->bundles);
    o.credentials = rt::StaticCredentials(opts->svids);
    o.policies = opts->policies;
    auto p = std::make_unique<ambient_node_proxy>();
    if (opts->xds.has_value()) {
      if (absl::Status st = WireXds(loop, *opts, p.get(), &o); !st.ok()) return st;
    }
    o.log = Gated(opts->log, p->log_open);
    p->log = o.log;
    if (!opts->dns_upstreams.empty()) {
      ambient::dns::PodDnsOptions d;
      d.upstreams = opts->dns_upstreams;
      absl::StatusOr<std::shared_ptr<ambient::dns::DnsMetrics>> metrics =
          ambient::dns::EnablePodDns(loop->loop.get(), &o, std::move(d));
      if (!metrics.ok()) return metrics.status();
      p->dns_metrics = *std::move(metrics);
    }
    absl::StatusOr<std::unique_ptr<rt::NodeProxy>> proxy =
        rt::NodeProxy::New(loop->loop.get(), std::move(o));
    if (!proxy.ok()) return proxy.status();
    p->proxy = std::move(*proxy);
    if (p->control_plane) p->control_plane->Start();
    *out = p.release();
    return absl::OkStatus();
  });
}

ambient_error* ambient_node_proxy_add_pod(ambient_node_proxy* proxy,
                                          const ambient_workload_info* pod,
                                          const ambient_netns* netns) {
  return Guard([&]() -> absl::Status {
    if (proxy == nullptr) return NullArgument("proxy");
    if (pod == nullptr) return NullArgument("pod");
    if (netns == nullptr) return NullArgument("netns");
    absl::StatusOr<ambient::netns::Netns> dup = netns->ns.Dup();
    if (!dup.ok()) return dup.status();
    ambient::netns::zds::WorkloadInfo info;
    info.name = pod->at(AMBIENT_WORKLOAD_NAME);
    info.ns = pod->at(AMBIENT_WORKLOAD_NAMESPACE);
    return proxy->proxy->AddPod(pod->at(AMBIENT_WORKLOAD_UID), info, std::move(*dup));
  });
}

int ambient_node_proxy_remove_pod(ambient_node_proxy* proxy, const char* uid) {
  return GuardCode([&]() -> int {
    if (proxy == nullptr || uid == nullptr) return AMBIENT_ERR_INVALID_ARGUMENT;
    return proxy->proxy->RemovePod(uid) ? 1 : 0;
  });
}

size_t ambient_node_proxy_pod_count(const ambient_node_proxy* proxy) {
  if (proxy == nullptr) return 0;
  try {
    return proxy->proxy->pods().size();
  } catch (...) {
    return 0;
  }
}

ambient_error* ambient_node_proxy_start_zds(ambient_node_proxy* proxy, const char* socket_path) {
  return Guard([&]() -> absl::Status {
    if (proxy == nullptr) return NullArgument("proxy");
    if (socket_path == nullptr) return NullArgument("socket_path");
    ambient::netns::zds::ZdsProxyOptions o;
    o.socket_path = socket_path;
    o.log = proxy->log;
    // A pod not in xDS yet is NOT_FOUND: tried again soon, as node-proxy does.
    if (proxy->control_plane) o.retry_interval = absl::Seconds(1);
    return proxy->proxy->StartZds(std::move(o));
  });
}

size_t ambient_node_proxy_dns_metrics(const ambient_node_proxy* proxy, char* buf, size_t len) {
  std::string text;
  try {
    if (proxy != nullptr && proxy->dns_metrics) text = proxy->dns_metrics->Prometheus();
  } catch (...) {
    text.clear();
  }
  return ambient::capi::CopyToBuffer(text, buf, len);
}

ambient_error* ambient_node_proxy_options_set_xds(ambient_node_proxy_options* opts,
                                                  const ambient_xds_options* xds) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (xds == nullptr) return NullArgument("xds");
    if (xds->connection.address.empty()) {
      return absl::InvalidArgumentError("xDS options: no address set");
    }
    if (xds->node.node_name.empty()) {
      return absl::InvalidArgumentError("xDS options: no node name set");
    }
    opts->xds = *xds;
    return absl::OkStatus();
  });
}

int ambient_node_proxy_ready(const ambient_node_proxy* proxy) {
  if (proxy == nullptr || !proxy->proxy) return 0;
  try {
    const ambient::netns::zds::ProxySession* zds = proxy->proxy->zds();
    if (zds != nullptr && !zds->ready()) return 0;
    if (proxy->control_plane && !proxy->control_plane->ready()) return 0;
    return 1;
  } catch (...) {
    return 0;
  }
}

void ambient_node_proxy_free(ambient_node_proxy* proxy) {
  try {
    delete proxy;
  } catch (...) {
    // Destructors here do not throw; nothing may cross into C regardless.
  }
}

}  // extern "C"
