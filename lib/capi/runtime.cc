// C ABI shims for the runtime layer (ambient/c/runtime.h).
#include "ambient/c/runtime.h"

#include <openssl/ssl.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ambient/hbone/telemetry.h"
#include "ambient/identity/trust_bundle.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/hbone_proxy.h"
#include "capi/error.h"

using ambient::capi::Guard;
using ambient::capi::GuardCode;
using ambient::capi::NullArgument;
namespace rt = ambient::runtime;

// Defined in lib/capi/hbone.cc.
namespace ambient::capi {
SSL_CTX* HboneTlsContext(const ambient_hbone_tls* tls);
bool HboneTlsIsServer(const ambient_hbone_tls* tls);
std::shared_ptr<identity::TrustBundleSource> HboneTlsBundles(const ambient_hbone_tls* tls);
const std::string& HboneTlsIdentity(const ambient_hbone_tls* tls);
}  // namespace ambient::capi

struct ambient_runtime_loop {
  std::unique_ptr<rt::EventLoop> loop;
};

struct ambient_hbone_server {
  std::unique_ptr<rt::HboneServer> server;
  std::shared_ptr<ambient::hbone::Metrics> metrics;
  std::string address;
};

struct ambient_hbone_client {
  std::unique_ptr<rt::HboneClient> client;
};

struct ambient_hbone_forwarder {
  std::unique_ptr<rt::HboneForwarder> forwarder;
  std::string address;
};

namespace {

ambient::LogSink SinkOf(ambient_log_fn fn, void* user) {
  if (fn == nullptr) return nullptr;
  return [fn, user](ambient::LogLevel level, absl::string_view component, absl::string_view msg) {
    std::string comp(component);
    fn(user, static_cast<ambient_log_level>(static_cast<int>(level)), comp.c_str(), msg.data(),
       msg.size());
  };
}

absl::Status Strings(const char* const* in, size_t n, const char* what,
                     std::vector<std::string>* out) {
  if (n > 0 && in == nullptr) return NullArgument(what);
  for (size_t i = 0; i < n; ++i) {
    if (in[i] == nullptr) return NullArgument(what);
    out->emplace_back(in[i]);
  }
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

void ambient_runtime_loop_free(ambient_runtime_loop* loop) { delete loop; }

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
    if (absl::Status s = Strings(allow, n_allow, "allow", &o.allow); !s.ok()) return s;
    o.log = SinkOf(log, log_user);
    auto metrics = std::make_shared<ambient::hbone::Metrics>();
    o.metrics = metrics;
    absl::StatusOr<std::unique_ptr<rt::HboneServer>> server =
        rt::HboneServer::New(loop->loop.get(), std::move(o));
    if (!server.ok()) return server.status();
    auto s = std::make_unique<ambient_hbone_server>();
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
  if (buf != nullptr && len > 0) {
    size_t n = text.size() < len - 1 ? text.size() : len - 1;
    std::memcpy(buf, text.data(), n);
    buf[n] = '\0';
  }
  return text.size();
}

void ambient_hbone_server_free(ambient_hbone_server* server) { delete server; }

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
    o.log = SinkOf(log, log_user);
    absl::StatusOr<std::unique_ptr<rt::HboneClient>> client =
        rt::HboneClient::New(loop->loop.get(), std::move(o));
    if (!client.ok()) return client.status();
    auto c = std::make_unique<ambient_hbone_client>();
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
    rt::TunnelTarget t;
    t.via = via;
    t.authority = authority;
    if (!Strings(expected, n_expected, "expected", &t.expected_identities).ok()) {
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

void ambient_hbone_client_free(ambient_hbone_client* client) { delete client; }

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
    rt::ForwarderOptions o;
    o.listen = listen;
    o.target.via = via;
    o.target.authority = authority;
    if (absl::Status s = Strings(expected, n_expected, "expected", &o.target.expected_identities);
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

}  // extern "C"
