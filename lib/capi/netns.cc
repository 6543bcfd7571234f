// extern "C" shims for the netns layer (ambient/c/netns.h). No logic here.
#include "ambient/c/netns.h"

#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "ambient/netns/netns.h"
#include "ambient/netns/pod_listeners.h"
#include "ambient/netns/pod_sockets.h"
#include "ambient/netns/zds.h"
#include "capi/internal.h"

namespace nn = ::ambient::netns;
namespace zds = ::ambient::netns::zds;
using ambient::capi::Guard;
using ambient::capi::GuardCode;
using ambient::capi::NullArgument;
using ambient::capi::ToCode;

struct ambient_pod_listener_options {
  nn::PodListenerOptions options;
};

struct ambient_pod_listeners {
  nn::PodListenerSet set;
};

struct ambient_zds_workload {
  const zds::WorkloadInfo* info;
};

struct ambient_zds_proxy_options {
  zds::ZdsProxyOptions options;
  ambient_zds_add_fn add = nullptr;
  ambient_zds_remove_fn remove = nullptr;
  ambient_zds_event_fn event = nullptr;
  void* user_data = nullptr;
};

struct ambient_zds_agent_options {
  zds::ZdsAgentOptions options;
};

namespace {

// CHandler forwards a ZdsProxy's calls to the host's C callbacks.
class CHandler final : public zds::WorkloadHandler {
 public:
  explicit CHandler(const ambient_zds_proxy_options& o)
      : add_(o.add), remove_(o.remove), event_(o.event), user_data_(o.user_data) {}

  absl::Status AddWorkload(const std::string& uid, const zds::WorkloadInfo& info,
                           nn::Netns netns) override {
    auto* handle = new (std::nothrow) ambient_netns{std::move(netns)};
    if (handle == nullptr) return absl::ResourceExhaustedError("out of memory");
    ambient_zds_workload w{&info};
    char reason[512] = {0};
    int rc = add_(user_data_, uid.c_str(), &w, handle, reason, sizeof(reason));
    if (rc == 0) return absl::OkStatus();
    reason[sizeof(reason) - 1] = '\0';
    if (reason[0] == '\0') return absl::AbortedError("refused by the node proxy");
    return absl::AbortedError(reason);
  }
  void RemoveWorkload(const std::string& uid) override { remove_(user_data_, uid.c_str()); }
  void OnSnapshotComplete() override {
    if (event_ != nullptr) event_(user_data_, AMBIENT_ZDS_SNAPSHOT_COMPLETE, "");
  }
  void OnDisconnected(const absl::Status& why) override {
    if (event_ == nullptr) return;
    std::string detail(why.message());
    event_(user_data_, AMBIENT_ZDS_DISCONNECTED, detail.c_str());
  }

 private:
  ambient_zds_add_fn add_;
  ambient_zds_remove_fn remove_;
  ambient_zds_event_fn event_;
  void* user_data_;
};

// SetSocketPath checks `path` and stores it in either end's options.
template <typename Options>
absl::Status SetSocketPath(Options* opts, const char* path) {
  if (opts == nullptr) return NullArgument("opts");
  if (path == nullptr) return NullArgument("path");
  if (absl::Status s = nn::zds::CheckSocketPath(path); !s.ok()) return s;
  opts->options.socket_path = path;
  return absl::OkStatus();
}

absl::Status Adopt(absl::StatusOr<nn::Netns> ns, ambient_netns** out) {
  if (!ns.ok()) return ns.status();
  *out = new ambient_netns{std::move(*ns)};
  return absl::OkStatus();
}

absl::StatusOr<ambient::SocketAddress> AddressArg(const void* sa, size_t len, const char* name) {
  if (sa == nullptr) return NullArgument(name);
  return ambient::SocketAddress::FromSockaddr(static_cast<const sockaddr*>(sa),
                                              static_cast<socklen_t>(len));
}

// A SocketFactory for a borrowed C handle.
class HandleFactory final : public nn::SocketFactory {
 public:
  explicit HandleFactory(const nn::Netns& ns) : ns_(ns) {}
  absl::StatusOr<nn::UniqueFd> Socket(int domain, int type, int protocol) override {
    return nn::SocketIn(ns_, domain, type, protocol);
  }
  absl::Status Run(absl::FunctionRef<absl::Status()> fn) override { return nn::RunIn(ns_, fn); }

 private:
  const nn::Netns& ns_;
};

}  // namespace

struct ambient_zds_proxy {
  explicit ambient_zds_proxy(const ambient_zds_proxy_options& o)
      : handler(o), proxy(o.options, &handler) {}
  CHandler handler;
  zds::ZdsProxy proxy;
};

struct ambient_zds_agent {
  std::unique_ptr<zds::ZdsAgent> agent;
};

extern "C" {

/* --- Namespace handles --- */

ambient_error* ambient_netns_open(const char* name_or_path, ambient_netns** out) {
  return Guard([&]() -> absl::Status {
    if (name_or_path == nullptr) return NullArgument("name_or_path");
    if (out == nullptr) return NullArgument("out");
    return Adopt(nn::Netns::Open(name_or_path), out);
  });
}

ambient_error* ambient_netns_open_pid(int pid, ambient_netns** out) {
  return Guard([&]() -> absl::Status {
    if (out == nullptr) return NullArgument("out");
    return Adopt(nn::Netns::OpenPid(pid), out);
  });
}

ambient_error* ambient_netns_open_fd(int fd, ambient_netns** out) {
  return Guard([&]() -> absl::Status {
    if (out == nullptr) return NullArgument("out");
    return Adopt(nn::Netns::DupFd(fd), out);
  });
}

ambient_error* ambient_netns_open_current(ambient_netns** out) {
  return Guard([&]() -> absl::Status {
    if (out == nullptr) return NullArgument("out");
    return Adopt(nn::Netns::Current(), out);
  });
}

ambient_error* ambient_netns_new_unnamed(ambient_netns** out) {
  return Guard([&]() -> absl::Status {
    if (out == nullptr) return NullArgument("out");
    return Adopt(nn::Netns::CreateUnnamed(), out);
  });
}

void ambient_netns_free(ambient_netns* ns) { delete ns; }

int ambient_netns_fd(const ambient_netns* ns) { return ns == nullptr ? -1 : ns->ns.fd(); }

void ambient_netns_id(const ambient_netns* ns, uint64_t* dev, uint64_t* ino) {
  if (dev != nullptr) *dev = ns == nullptr ? 0 : ns->ns.id().dev;
  if (ino != nullptr) *ino = ns == nullptr ? 0 : ns->ns.id().ino;
}

int ambient_netns_equal(const ambient_netns* a, const ambient_netns* b) {
  return a != nullptr && b != nullptr && a->ns == b->ns ? 1 : 0;
}

ambient_error* ambient_netns_run(const ambient_netns* ns, int (*fn)(void*), void* user_data,
                                 int* fn_result) {
  return Guard([&]() -> absl::Status {
    if (ns == nullptr) return NullArgument("ns");
    if (fn == nullptr) return NullArgument("fn");
    return nn::RunIn(ns->ns, [&] {
      int r = fn(user_data);
      if (fn_result != nullptr) *fn_result = r;
      return absl::OkStatus();
    });
  });
}

int ambient_netns_socket(const ambient_netns* ns, int domain, int type, int protocol) {
  return GuardCode([&]() -> int {
    if (ns == nullptr) return AMBIENT_ERR_INVALID_ARGUMENT;
    absl::StatusOr<nn::UniqueFd> fd = nn::SocketIn(ns->ns, domain, type, protocol);
    return fd.ok() ? fd->release() : ToCode(fd.status());
  });
}

ambient_error* ambient_netns_loopback_up(const ambient_netns* ns) {
  return Guard([&]() -> absl::Status {
    if (ns == nullptr) return NullArgument("ns");
    return nn::BringUpLoopback(ns->ns);
  });
}

/* --- In-pod listeners and upstream sockets --- */

const char* ambient_listener_kind_name(int kind) {
  if (kind < AMBIENT_LISTENER_OUTBOUND || kind > AMBIENT_LISTENER_DNS_TCP) return "unknown";
  return nn::ListenerKindName(static_cast<nn::ListenerKind>(kind));
}

ambient_pod_listener_options* ambient_pod_listener_options_new(void) {
  return new (std::nothrow) ambient_pod_listener_options;
}

void ambient_pod_listener_options_free(ambient_pod_listener_options* opts) { delete opts; }

void ambient_pod_listener_options_set_mark(ambient_pod_listener_options* opts, uint32_t mark) {
  if (opts != nullptr) opts->options.mark = mark;
}

void ambient_pod_listener_options_set_dns(ambient_pod_listener_options* opts, int enabled) {
  if (opts != nullptr) opts->options.dns = enabled != 0;
}

void ambient_pod_listener_options_set_reuse_port(ambient_pod_listener_options* opts,
                                                 int enabled) {
  if (opts != nullptr) opts->options.reuse_port = enabled != 0;
}

void ambient_pod_listener_options_set_transparency(ambient_pod_listener_options* opts,
                                                   ambient_transparency mode) {
  if (opts == nullptr) return;
  // Any int may arrive from C: read the bits, not an out-of-range enum value.
  int value;
  std::memcpy(&value, &mode, sizeof(value));
  switch (value) {
    case AMBIENT_TRANSPARENT_REQUIRED: opts->options.transparent = nn::Transparency::kRequired; break;
    case AMBIENT_TRANSPARENT_OFF: opts->options.transparent = nn::Transparency::kOff; break;
    default: opts->options.transparent = nn::Transparency::kBestEffort; break;
  }
}

void ambient_pod_listener_options_set_ports(ambient_pod_listener_options* opts,
                                            uint16_t outbound, uint16_t inbound_plaintext,
                                            uint16_t inbound_hbone, uint16_t dns) {
  if (opts == nullptr) return;
  opts->options.outbound_port = outbound;
  opts->options.inbound_plaintext_port = inbound_plaintext;
  opts->options.inbound_hbone_port = inbound_hbone;
  opts->options.dns_port = dns;
}

ambient_error* ambient_pod_listeners_open(const ambient_netns* ns,
                                          const ambient_pod_listener_options* opts,
                                          ambient_pod_listeners** out) {
  return Guard([&]() -> absl::Status {
    if (ns == nullptr) return NullArgument("ns");
    if (out == nullptr) return NullArgument("out");
    HandleFactory factory(ns->ns);
    absl::StatusOr<nn::PodListenerSet> set = nn::PodListenerSet::Open(
        factory, opts != nullptr ? opts->options : nn::PodListenerOptions());
    if (!set.ok()) return set.status();
    *out = new ambient_pod_listeners{std::move(*set)};
    return absl::OkStatus();
  });
}

void ambient_pod_listeners_free(ambient_pod_listeners* set) { delete set; }

size_t ambient_pod_listeners_count(const ambient_pod_listeners* set) {
  return set == nullptr ? 0 : set->set.listeners().size();
}

int ambient_pod_listeners_fd(const ambient_pod_listeners* set, size_t index) {
  if (set == nullptr || index >= set->set.listeners().size()) return AMBIENT_ERR_OUT_OF_RANGE;
  return set->set.listeners()[index].fd.get();
}

int ambient_pod_listeners_kind(const ambient_pod_listeners* set, size_t index) {
  if (set == nullptr || index >= set->set.listeners().size()) return AMBIENT_ERR_OUT_OF_RANGE;
  return static_cast<int>(set->set.listeners()[index].kind);
}

int ambient_pod_listeners_address(const ambient_pod_listeners* set, size_t index, char* buf,
                                  size_t cap) {
  return GuardCode([&]() -> int {
    if (set == nullptr || buf == nullptr || index >= set->set.listeners().size()) {
      return AMBIENT_ERR_OUT_OF_RANGE;
    }
    std::string text = set->set.listeners()[index].local.ToString();
    if (text.size() + 1 > cap) return AMBIENT_ERR_OUT_OF_RANGE;  // nothing written
    return static_cast<int>(ambient::capi::CopyToBuffer(text, buf, cap));
  });
}

int ambient_original_destination(int fd, void* addr, size_t cap) {
  return GuardCode([&]() -> int {
    if (addr == nullptr) return AMBIENT_ERR_INVALID_ARGUMENT;
    absl::StatusOr<ambient::SocketAddress> dst = nn::OriginalDestination(fd);
    if (!dst.ok()) return ToCode(dst.status());
    if (dst->size() > cap) return AMBIENT_ERR_INVALID_ARGUMENT;
    std::memcpy(addr, dst->sockaddr_ptr(), dst->size());
    return static_cast<int>(dst->size());
  });
}

int ambient_netns_outbound_socket(const ambient_netns* ns, int family, uint32_t mark) {
  return GuardCode([&]() -> int {
    if (ns == nullptr) return AMBIENT_ERR_INVALID_ARGUMENT;
    HandleFactory factory(ns->ns);
    absl::StatusOr<nn::UniqueFd> fd = nn::OutboundUpstreamSocket(factory, family, mark);
    return fd.ok() ? fd->release() : ToCode(fd.status());
  });
}

int ambient_netns_inbound_socket(const ambient_netns* ns, const void* client, size_t client_len,
                                 const void* destination, size_t destination_len,
                                 uint32_t mark) {
  return GuardCode([&]() -> int {
    if (ns == nullptr) return AMBIENT_ERR_INVALID_ARGUMENT;
    absl::StatusOr<ambient::SocketAddress> c = AddressArg(client, client_len, "client");
    if (!c.ok()) return ToCode(c.status());
    absl::StatusOr<ambient::SocketAddress> d =
        AddressArg(destination, destination_len, "destination");
    if (!d.ok()) return ToCode(d.status());
    HandleFactory factory(ns->ns);
    absl::StatusOr<nn::UniqueFd> fd = nn::InboundUpstreamSocket(factory, *c, *d, mark);
    return fd.ok() ? fd->release() : ToCode(fd.status());
  });
}

/* --- ZDS proxy --- */

const char* ambient_zds_workload_name(const ambient_zds_workload* w) {
  return w == nullptr ? "" : w->info->name.c_str();
}

const char* ambient_zds_workload_namespace(const ambient_zds_workload* w) {
  return w == nullptr ? "" : w->info->ns.c_str();
}

const char* ambient_zds_workload_service_account(const ambient_zds_workload* w) {
  return w == nullptr ? "" : w->info->service_account.c_str();
}

ambient_zds_proxy_options* ambient_zds_proxy_options_new(void) {
  return ambient::capi::NewOrNull<ambient_zds_proxy_options>();
}

void ambient_zds_proxy_options_free(ambient_zds_proxy_options* opts) { delete opts; }

ambient_error* ambient_zds_proxy_options_set_socket_path(ambient_zds_proxy_options* opts,
                                                         const char* path) {
  return Guard([&] { return SetSocketPath(opts, path); });
}

ambient_error* ambient_zds_proxy_options_set_backoff(ambient_zds_proxy_options* opts,
                                                     uint32_t initial_ms, uint32_t max_ms) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (initial_ms == 0 || max_ms < initial_ms) {
      return absl::InvalidArgumentError("backoff must satisfy 0 < initial_ms <= max_ms");
    }
    opts->options.initial_backoff = absl::Milliseconds(initial_ms);
    opts->options.max_backoff = absl::Milliseconds(max_ms);
    return absl::OkStatus();
  });
}

void ambient_zds_proxy_options_set_retry_interval(ambient_zds_proxy_options* opts,
                                                  uint32_t interval_ms) {
  if (opts != nullptr) opts->options.retry_interval = absl::Milliseconds(interval_ms);
}

void ambient_zds_proxy_options_set_callbacks(ambient_zds_proxy_options* opts,
                                             ambient_zds_add_fn add, ambient_zds_remove_fn remove,
                                             ambient_zds_event_fn event, void* user_data) {
  if (opts == nullptr) return;
  opts->add = add;
  opts->remove = remove;
  opts->event = event;
  opts->user_data = user_data;
}

void ambient_zds_proxy_options_set_log(ambient_zds_proxy_options* opts, ambient_log_fn fn,
                                       void* user_data) {
  if (opts != nullptr) ambient::capi::SetLogSink(&opts->options.log, fn, user_data);
}

ambient_error* ambient_zds_proxy_new(const ambient_zds_proxy_options* opts,
                                     ambient_zds_proxy** out) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (out == nullptr) return NullArgument("out");
    if (opts->add == nullptr || opts->remove == nullptr) {
      return absl::InvalidArgumentError("a ZDS proxy needs add and remove callbacks");
    }
    *out = new ambient_zds_proxy(*opts);
    return absl::OkStatus();
  });
}

ambient_error* ambient_zds_proxy_start(ambient_zds_proxy* proxy) {
  return Guard([&]() -> absl::Status {
    if (proxy == nullptr) return NullArgument("proxy");
    return proxy->proxy.Start();
  });
}

void ambient_zds_proxy_stop(ambient_zds_proxy* proxy) {
  if (proxy != nullptr) proxy->proxy.Stop();
}

void ambient_zds_proxy_free(ambient_zds_proxy* proxy) { delete proxy; }

int ambient_zds_proxy_ready(const ambient_zds_proxy* proxy) {
  return proxy != nullptr && proxy->proxy.ready() ? 1 : 0;
}

size_t ambient_zds_proxy_workload_count(const ambient_zds_proxy* proxy) {
  return proxy == nullptr ? 0 : proxy->proxy.workload_count();
}

/* --- ZDS agent --- */

ambient_zds_agent_options* ambient_zds_agent_options_new(void) {
  return ambient::capi::NewOrNull<ambient_zds_agent_options>();
}

void ambient_zds_agent_options_free(ambient_zds_agent_options* opts) { delete opts; }

ambient_error* ambient_zds_agent_options_set_socket_path(ambient_zds_agent_options* opts,
                                                         const char* path) {
  return Guard([&] { return SetSocketPath(opts, path); });
}

ambient_error* ambient_zds_agent_options_set_timeout(ambient_zds_agent_options* opts,
                                                     uint32_t timeout_ms) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (timeout_ms == 0) return absl::InvalidArgumentError("timeout must be positive");
    opts->options.io_timeout = absl::Milliseconds(timeout_ms);
    return absl::OkStatus();
  });
}

void ambient_zds_agent_options_set_log(ambient_zds_agent_options* opts, ambient_log_fn fn,
                                       void* user_data) {
  if (opts != nullptr) ambient::capi::SetLogSink(&opts->options.log, fn, user_data);
}

ambient_error* ambient_zds_agent_new(const ambient_zds_agent_options* opts,
                                     ambient_zds_agent** out) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (out == nullptr) return NullArgument("out");
    absl::StatusOr<std::unique_ptr<zds::ZdsAgent>> agent = zds::ZdsAgent::Start(opts->options);
    if (!agent.ok()) return agent.status();
    *out = new ambient_zds_agent{std::move(*agent)};
    return absl::OkStatus();
  });
}

void ambient_zds_agent_free(ambient_zds_agent* agent) { delete agent; }

ambient_error* ambient_zds_agent_add(ambient_zds_agent* agent, const ambient_workload_info* pod,
                                     const ambient_netns* netns) {
  return Guard([&]() -> absl::Status {
    if (agent == nullptr) return NullArgument("agent");
    if (pod == nullptr) return NullArgument("pod");
    if (netns == nullptr) return NullArgument("netns");
    zds::WorkloadInfo info{pod->at(AMBIENT_WORKLOAD_NAME), pod->at(AMBIENT_WORKLOAD_NAMESPACE),
                           pod->at(AMBIENT_WORKLOAD_SERVICE_ACCOUNT)};
    return agent->agent->AddWorkload(pod->at(AMBIENT_WORKLOAD_UID), info, netns->ns);
  });
}

ambient_error* ambient_zds_agent_keep(ambient_zds_agent* agent, const char* uid) {
  return Guard([&]() -> absl::Status {
    if (agent == nullptr) return NullArgument("agent");
    if (uid == nullptr) return NullArgument("uid");
    return agent->agent->KeepWorkload(uid);
  });
}

ambient_error* ambient_zds_agent_del(ambient_zds_agent* agent, const char* uid) {
  return Guard([&]() -> absl::Status {
    if (agent == nullptr) return NullArgument("agent");
    if (uid == nullptr) return NullArgument("uid");
    return agent->agent->DelWorkload(uid);
  });
}

size_t ambient_zds_agent_proxy_count(const ambient_zds_agent* agent) {
  return agent == nullptr ? 0 : agent->agent->proxy_count();
}

ambient_error* ambient_zds_agent_wait_for_proxies(const ambient_zds_agent* agent, size_t n,
                                                  uint32_t timeout_ms) {
  return Guard([&]() -> absl::Status {
    if (agent == nullptr) return NullArgument("agent");
    return agent->agent->WaitForProxies(n, absl::Milliseconds(timeout_ms));
  });
}

}  // extern "C"
