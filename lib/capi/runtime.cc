// C ABI shims for the runtime layer (ambient/c/runtime.h).
#include "ambient/c/runtime.h"

#include <openssl/ssl.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
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
#include "capi/internal.h"

using ambient::capi::CopyStrings;
using ambient::capi::Guard;
using ambient::capi::GuardCode;
using ambient::capi::NullArgument;
namespace rt = ambient::runtime;

struct ambient_runtime_loop {
  std::unique_ptr<rt::EventLoop> loop;
};

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
  std::vector<rt::SocketAddress> dns_upstreams;  // non-empty: the DNS proxy is on
};

struct ambient_node_proxy {
  LogGate log_open = std::make_shared<std::atomic<bool>>(true);
  std::unique_ptr<rt::NodeProxy> proxy;
  ambient::LogSink log;
  std::shared_ptr<ambient::dns::DnsMetrics> dns_metrics;  // set when DNS is on
  ~ambient_node_proxy() {
    proxy.reset();
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

ambient_error* ambient_hbone_server_new(ambient_runtime_loop* loop, const ambient_hbone_tls* tls,
                                        const char* listen, const char* const* allow,
                                        size_t n_allow, ambient_log_fn log, void* log_user,
                                        ambient_hbone_server** out) {
  return Guard([&]() -> absl::Status {
    if (loop == nullptr) return NullArgument("loop");
    if (tls == nullptr) return NullArgument("tls");
    if (listen == nullptr) return NullArgument("listen");
    if (out == nullptr) return NullArgument("out");
    if (!ambient::capi::HboneTlsIsServer(tls)) {
      return absl::InvalidArgumentError("an HBONE server needs a server-role tls");
    }
    rt::ServerOptions o;
    o.listen = listen;
    o.ssl_ctx = ambient::capi::HboneTlsContext(tls);
    if (absl::Status s = CopyStrings(allow, n_allow, "allow", "allow", &o.allow); !s.ok()) return s;
    LogGate gate = std::make_shared<std::atomic<bool>>(true);
    o.log = Gated(ambient::capi::LogSinkOf(log, log_user), gate);
    auto metrics = std::make_shared<ambient::hbone::Metrics>();
    o.metrics = metrics;
    absl::StatusOr<std::unique_ptr<rt::HboneServer>> server =
        rt::HboneServer::New(loop->loop.get(), std::move(o));
    if (!server.ok()) return server.status();
    auto s = std::make_unique<ambient_hbone_server>();
    s->log_open = gate;
    s->address = (*server)->address().ToString();
    s->server = std::move(*server);
    s->metrics = std::move(metrics);
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

ambient_error* ambient_hbone_client_new(ambient_runtime_loop* loop, const ambient_hbone_tls* tls,
                                        ambient_log_fn log, void* log_user,
                                        ambient_hbone_client** out) {
  return Guard([&]() -> absl::Status {
    if (loop == nullptr) return NullArgument("loop");
    if (tls == nullptr) return NullArgument("tls");
    if (out == nullptr) return NullArgument("out");
    if (ambient::capi::HboneTlsIsServer(tls)) {
      return absl::InvalidArgumentError("an HBONE client needs a client-role tls");
    }
    rt::ClientOptions o;
    o.ssl_ctx = ambient::capi::HboneTlsContext(tls);
    o.bundles = ambient::capi::HboneTlsBundles(tls);
    o.identity = ambient::capi::HboneTlsIdentity(tls);
    LogGate gate = std::make_shared<std::atomic<bool>>(true);
    o.log = Gated(ambient::capi::LogSinkOf(log, log_user), gate);
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

int ambient_hbone_client_tunnel(ambient_hbone_client* client, const char* via,
                                const char* authority, const char* const* expected,
                                size_t n_expected, int in_fd, int out_fd,
                                ambient_hbone_tunnel_done_fn done, void* done_user) {
  return GuardCode([&]() -> int {
    if (client == nullptr || via == nullptr || authority == nullptr || in_fd < 0 || out_fd < 0) {
      return AMBIENT_ERR_INVALID_ARGUMENT;
    }
    // Malformed addresses are the caller's error now, not a failure via `done`.
    if (!rt::ParseSocketAddress(via).ok() || !ambient::hbone::ParseAuthority(authority).ok()) {
      return AMBIENT_ERR_INVALID_ARGUMENT;
    }
    rt::TunnelTarget t;
    t.via = via;
    t.authority = authority;
    t.source_workload = client->source_workload;
    if (!CopyStrings(expected, n_expected, "expected", "expected", &t.expected_identities).ok()) {
      return AMBIENT_ERR_INVALID_ARGUMENT;
    }
    client->client->Tunnel(t, in_fd, out_fd, /*owns_fds=*/false,
                           [done, done_user](const rt::TunnelResult& r) {
                             if (done == nullptr) return;
                             std::string msg(r.status.message());
                             done(done_user, ambient::capi::ToCode(r.status), r.http_status,
                                  msg.c_str());
                           });
    return 0;
  });
}

namespace {

// WorkloadOf collects the workload fields of the _set_workload calls (NULL
// or "" = unknown) and checks them with hbone::CheckWorkloadInfo.
absl::StatusOr<ambient::hbone::WorkloadInfo> WorkloadOf(const char* name,
                                                       const char* workload_type,
                                                       const char* ns,
                                                       const char* canonical_service,
                                                       const char* canonical_revision,
                                                       const char* cluster, const char* region,
                                                       const char* zone) {
  auto str = [](const char* s) { return s == nullptr ? std::string() : std::string(s); };
  ambient::hbone::WorkloadInfo w;
  w.name = str(name);
  w.workload_type = str(workload_type);
  w.ns = str(ns);
  w.canonical_service = str(canonical_service);
  w.canonical_revision = str(canonical_revision);
  w.cluster = str(cluster);
  w.region = str(region);
  w.zone = str(zone);
  if (absl::Status s = ambient::hbone::CheckWorkloadInfo(w); !s.ok()) return s;
  return w;
}

}  // namespace

ambient_error* ambient_hbone_server_set_workload(ambient_hbone_server* server, const char* name,
                                                 const char* workload_type, const char* ns,
                                                 const char* canonical_service,
                                                 const char* canonical_revision,
                                                 const char* cluster, const char* region,
                                                 const char* zone) {
  return Guard([&]() -> absl::Status {
    if (server == nullptr) return NullArgument("server");
    absl::StatusOr<ambient::hbone::WorkloadInfo> w = WorkloadOf(
        name, workload_type, ns, canonical_service, canonical_revision, cluster, region, zone);
    if (!w.ok()) return w.status();
    server->server->SetWorkload(*w);
    return absl::OkStatus();
  });
}

ambient_error* ambient_hbone_server_set_limits(ambient_hbone_server* server,
                                              size_t max_connections, size_t max_handshakes,
                                              uint32_t silent_timeout_ms,
                                              size_t max_pending_dials_per_connection,
                                              size_t max_pending_dials_per_identity) {
  return Guard([&]() -> absl::Status {
    if (server == nullptr) return NullArgument("server");
    rt::ServerLimits l;
    l.max_connections = max_connections;
    l.max_handshakes = max_handshakes;
    l.silent_timeout = absl::Milliseconds(silent_timeout_ms);
    l.max_pending_dials_per_connection = max_pending_dials_per_connection;
    l.max_pending_dials_per_identity = max_pending_dials_per_identity;
    server->server->SetLimits(l);
    return absl::OkStatus();
  });
}

ambient_error* ambient_hbone_client_set_source_workload(
    ambient_hbone_client* client, const char* name, const char* workload_type, const char* ns,
    const char* canonical_service, const char* canonical_revision, const char* cluster,
    const char* region, const char* zone) {
  return Guard([&]() -> absl::Status {
    if (client == nullptr) return NullArgument("client");
    absl::StatusOr<ambient::hbone::WorkloadInfo> w = WorkloadOf(
        name, workload_type, ns, canonical_service, canonical_revision, cluster, region, zone);
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
                                           const char* listen, const char* via,
                                           const char* authority, const char* const* expected,
                                           size_t n_expected, ambient_hbone_forwarder** out) {
  return Guard([&]() -> absl::Status {
    if (loop == nullptr) return NullArgument("loop");
    if (client == nullptr) return NullArgument("client");
    if (listen == nullptr) return NullArgument("listen");
    if (via == nullptr) return NullArgument("via");
    if (authority == nullptr) return NullArgument("authority");
    if (out == nullptr) return NullArgument("out");
    if (absl::StatusOr<rt::SocketAddress> a = rt::ParseSocketAddress(via); !a.ok()) {
      return a.status();
    }
    if (absl::StatusOr<ambient::hbone::Authority> a = ambient::hbone::ParseAuthority(authority);
        !a.ok()) {
      return a.status();
    }
    rt::ForwarderOptions o;
    o.listen = listen;
    o.target.via = via;
    o.target.authority = authority;
    o.target.source_workload = client->source_workload;
    if (absl::Status s = CopyStrings(expected, n_expected, "expected", "expected",
                                     &o.target.expected_identities);
        !s.ok()) {
      return s;
    }
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
                                                       const char* uid, const char* name,
                                                       const char* ns,
                                                       const char* service_account,
                                                       const char* trust_domain,
                                                       const char* const* addresses,
                                                       size_t n_addresses, int hbone) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (uid == nullptr) return NullArgument("uid");
    if (name == nullptr) return NullArgument("name");
    if (ns == nullptr) return NullArgument("ns");
    rt::Workload w;
    w.uid = uid;
    w.name = name;
    w.ns = ns;
    if (service_account != nullptr) w.service_account = service_account;
    if (trust_domain != nullptr) w.trust_domain = trust_domain;
    w.hbone = hbone != 0;
    if (absl::Status s =
            CopyStrings(addresses, n_addresses, "addresses", "addresses", &w.addresses);
        !s.ok()) {
      return s;
    }
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
    absl::StatusOr<std::vector<rt::SocketAddress>> list =
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
    *out = p.release();
    return absl::OkStatus();
  });
}

ambient_error* ambient_node_proxy_add_pod(ambient_node_proxy* proxy, const char* uid,
                                          const char* name, const char* ns, int netns_fd) {
  return Guard([&]() -> absl::Status {
    if (proxy == nullptr) return NullArgument("proxy");
    if (uid == nullptr) return NullArgument("uid");
    absl::StatusOr<ambient::netns::Netns> netns = ambient::netns::Netns::DupFd(netns_fd);
    if (!netns.ok()) return netns.status();
    ambient::netns::zds::WorkloadInfo info;
    if (name != nullptr) info.name = name;
    if (ns != nullptr) info.namespace_name = ns;
    return proxy->proxy->AddPod(uid, info, std::move(*netns));
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

void ambient_node_proxy_free(ambient_node_proxy* proxy) {
  try {
    delete proxy;
  } catch (...) {
    // Destructors here do not throw; nothing may cross into C regardless.
  }
}

}  // extern "C"
