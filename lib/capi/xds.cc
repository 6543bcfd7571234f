// C ABI shims for the control-plane pieces (ambient/c/xds.h).
#include "ambient/c/xds.h"

#include <openssl/crypto.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ambient/base/runtime_check.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/spiffe_id.h"
#include "ambient/xds/certificate_client.h"
#include "capi/internal.h"

using ambient::capi::Guard;
using ambient::capi::NullArgument;
namespace id = ambient::identity;
namespace xds = ambient::xds;

struct ambient_ca_client_options {
  xds::CertificateClientOptions options;
};

struct ambient_ca_client {
  // Shared with the handles, which look their status up while it lives.
  std::shared_ptr<xds::CertificateClient> client;
};

struct ambient_ca_certificate {
  id::SpiffeId id;
  std::string id_text;
  std::shared_ptr<id::CredentialHolder> holder;  // the acquisition
  std::weak_ptr<xds::CertificateClient> client;
};

namespace {

absl::Status SetString(ambient_ca_client_options* opts, const char* value, const char* name,
                       bool allow_empty, std::string xds::ConnectionOptions::*field) {
  if (opts == nullptr) return NullArgument("opts");
  if (value == nullptr) return NullArgument(name);
  if (!allow_empty && *value == '\0') {
    return absl::InvalidArgumentError(absl::StrCat(name, " must not be empty"));
  }
  opts->options.ca.*field = value;
  return absl::OkStatus();
}

std::optional<xds::CertStatus> StatusOf(const ambient_ca_certificate* cert) {
  std::shared_ptr<xds::CertificateClient> c = cert->client.lock();
  if (!c) return std::nullopt;
  return c->StatusOf(cert->id);
}

ambient_error* CopyPem(const ambient_ca_certificate* cert, bool key, char* buf, size_t cap,
                       size_t* out_len) {
  return Guard([&]() -> absl::Status {
    if (out_len == nullptr) return NullArgument("out_len");
    *out_len = 0;
    if (cert == nullptr) return NullArgument("cert");
    std::shared_ptr<const id::Credentials> current = cert->holder->Get();
    if (current == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("no certificate for ", cert->id_text, " yet"));
    }
    absl::StatusOr<xds::PemPair> pem = xds::CredentialsPem(*current);
    if (!pem.ok()) return pem.status();
    *out_len = ambient::capi::CopyToBuffer(key ? pem->key : pem->chain, buf, cap);
    OPENSSL_cleanse(pem->key.data(), pem->key.size());
    return absl::OkStatus();
  });
}

}  // namespace

extern "C" {

ambient_ca_client_options* ambient_ca_client_options_new(void) {
  return ambient::capi::NewOrNull<ambient_ca_client_options>();
}

void ambient_ca_client_options_free(ambient_ca_client_options* opts) { delete opts; }

ambient_error* ambient_ca_client_options_set_address(ambient_ca_client_options* opts,
                                                     const char* address) {
  return Guard(
      [&] { return SetString(opts, address, "address", true, &xds::ConnectionOptions::address); });
}

ambient_error* ambient_ca_client_options_set_roots_pem_file(ambient_ca_client_options* opts,
                                                            const char* path) {
  return Guard([&] {
    return SetString(opts, path, "roots_pem_file", true, &xds::ConnectionOptions::roots_pem_file);
  });
}

ambient_error* ambient_ca_client_options_set_server_name(ambient_ca_client_options* opts,
                                                         const char* server_name) {
  return Guard([&] {
    return SetString(opts, server_name, "server_name", false, &xds::ConnectionOptions::server_name);
  });
}

ambient_error* ambient_ca_client_options_set_token_file(ambient_ca_client_options* opts,
                                                        const char* path) {
  return Guard([&] {
    return SetString(opts, path, "token_file", true, &xds::ConnectionOptions::token_file);
  });
}

ambient_error* ambient_ca_client_options_set_cluster_id(ambient_ca_client_options* opts,
                                                        const char* cluster_id) {
  return Guard([&] {
    return SetString(opts, cluster_id, "cluster_id", false, &xds::ConnectionOptions::cluster_id);
  });
}

ambient_error* ambient_ca_client_options_set_timeout_ms(ambient_ca_client_options* opts,
                                                        uint64_t ms) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (ms == 0) return absl::InvalidArgumentError("the CA timeout must be positive");
    opts->options.ca_timeout = absl::Milliseconds(static_cast<int64_t>(ms));
    return absl::OkStatus();
  });
}

ambient_error* ambient_ca_client_options_set_validity_s(ambient_ca_client_options* opts,
                                                        uint64_t seconds) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (seconds == 0) return absl::InvalidArgumentError("the validity must be positive");
    opts->options.certificates.validity = absl::Seconds(static_cast<int64_t>(seconds));
    return absl::OkStatus();
  });
}

void ambient_ca_client_options_set_impersonate(ambient_ca_client_options* opts, int impersonate) {
  if (opts != nullptr) opts->options.certificates.impersonate = impersonate != 0;
}

ambient_error* ambient_ca_client_new(ambient_runtime_loop* loop,
                                     const ambient_ca_client_options* opts,
                                     ambient_ca_client** out) {
  return Guard([&]() -> absl::Status {
    if (out == nullptr) return NullArgument("out");
    *out = nullptr;
    if (loop == nullptr) return NullArgument("loop");
    if (opts == nullptr) return NullArgument("opts");
    if (absl::Status st = ambient::EnsureTlsBackend(); !st.ok()) return st;
    if (opts->options.ca.address.empty()) {
      return absl::InvalidArgumentError("CA client: no CA address set");
    }
    auto client = xds::CertificateClient::New(ambient::capi::LoopOf(loop), opts->options);
    if (!client.ok()) return client.status();
    *out = new ambient_ca_client{std::shared_ptr<xds::CertificateClient>(std::move(*client))};
    return absl::OkStatus();
  });
}

ambient_error* ambient_ca_client_acquire(ambient_ca_client* client, const char* spiffe_id,
                                         ambient_ca_certificate** out) {
  return Guard([&]() -> absl::Status {
    if (out == nullptr) return NullArgument("out");
    *out = nullptr;
    if (client == nullptr) return NullArgument("client");
    if (spiffe_id == nullptr) return NullArgument("spiffe_id");
    if (*spiffe_id == '\0') return absl::InvalidArgumentError("empty SPIFFE ID");
    absl::StatusOr<id::SpiffeId> parsed = id::SpiffeId::Parse(spiffe_id);
    if (!parsed.ok()) return parsed.status();
    auto cert = std::make_unique<ambient_ca_certificate>(
        ambient_ca_certificate{*parsed, std::string(parsed->str()), nullptr, client->client});
    cert->holder = client->client->Acquire(*parsed);
    *out = cert.release();
    return absl::OkStatus();
  });
}

void ambient_ca_client_free(ambient_ca_client* client) { delete client; }

const char* ambient_ca_certificate_get0_id(const ambient_ca_certificate* cert) {
  return cert == nullptr ? "" : cert->id_text.c_str();
}

ambient_ca_state ambient_ca_certificate_state(const ambient_ca_certificate* cert) {
  if (cert == nullptr) return AMBIENT_CA_UNAVAILABLE;
  try {
    std::optional<xds::CertStatus> s = StatusOf(cert);
    if (!s.has_value()) {
      std::shared_ptr<const id::Credentials> c = cert->holder->Get();
      return c != nullptr && c->not_after() > absl::ToUnixSeconds(absl::Now())
                 ? AMBIENT_CA_AVAILABLE
                 : AMBIENT_CA_UNAVAILABLE;
    }
    switch (s->state) {
      case xds::CertStatus::State::kInitializing:
        return AMBIENT_CA_INITIALIZING;
      case xds::CertStatus::State::kAvailable:
        return AMBIENT_CA_AVAILABLE;
      case xds::CertStatus::State::kUnavailable:
        return AMBIENT_CA_UNAVAILABLE;
    }
  } catch (...) {
  }
  return AMBIENT_CA_UNAVAILABLE;
}

int64_t ambient_ca_certificate_not_after(const ambient_ca_certificate* cert) {
  if (cert == nullptr) return 0;
  std::shared_ptr<const id::Credentials> c = cert->holder->Get();
  return c == nullptr ? 0 : c->not_after();
}

uint32_t ambient_ca_certificate_failures(const ambient_ca_certificate* cert) {
  if (cert == nullptr) return 0;
  try {
    std::optional<xds::CertStatus> s = StatusOf(cert);
    return s.has_value() ? s->failures : 0;
  } catch (...) {
    return 0;
  }
}

size_t ambient_ca_certificate_last_error(const ambient_ca_certificate* cert, char* buf,
                                         size_t cap) {
  if (cert == nullptr) return ambient::capi::CopyToBuffer("", buf, cap);
  try {
    std::optional<xds::CertStatus> s = StatusOf(cert);
    return ambient::capi::CopyToBuffer(s.has_value() ? s->last_error : "", buf, cap);
  } catch (...) {
    return ambient::capi::CopyToBuffer("", buf, cap);
  }
}

ambient_error* ambient_ca_certificate_chain_pem(const ambient_ca_certificate* cert, char* buf,
                                                size_t cap, size_t* out_len) {
  return CopyPem(cert, false, buf, cap, out_len);
}

ambient_error* ambient_ca_certificate_key_pem(const ambient_ca_certificate* cert, char* buf,
                                              size_t cap, size_t* out_len) {
  return CopyPem(cert, true, buf, cap, out_len);
}

ambient_error* ambient_ca_certificate_root_pem(const ambient_ca_certificate* cert, char* buf,
                                               size_t cap, size_t* out_len) {
  return Guard([&]() -> absl::Status {
    if (out_len == nullptr) return NullArgument("out_len");
    *out_len = 0;
    if (cert == nullptr) return NullArgument("cert");
    std::optional<xds::CertStatus> s = StatusOf(cert);
    if (!s.has_value()) return absl::FailedPreconditionError("the CA client was freed");
    if (s->root_pem.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("no certificate for ", cert->id_text, " yet"));
    }
    *out_len = ambient::capi::CopyToBuffer(s->root_pem, buf, cap);
    return absl::OkStatus();
  });
}

ambient_error* ambient_ca_certificate_get1_credentials(const ambient_ca_certificate* cert,
                                                       ambient_credentials** out) {
  return Guard([&]() -> absl::Status {
    if (out == nullptr) return NullArgument("out");
    *out = nullptr;
    if (cert == nullptr) return NullArgument("cert");
    *out = ambient::capi::NewCredentials(cert->holder);
    return absl::OkStatus();
  });
}

void ambient_ca_certificate_free(ambient_ca_certificate* cert) { delete cert; }

ambient_xds_options* ambient_xds_options_new(void) {
  return ambient::capi::NewOrNull<ambient_xds_options>();
}

void ambient_xds_options_free(ambient_xds_options* opts) { delete opts; }

ambient_error* ambient_xds_options_set_address(ambient_xds_options* opts, const char* address) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (address == nullptr) return NullArgument("address");
    opts->connection.address = address;
    return absl::OkStatus();
  });
}

ambient_error* ambient_xds_options_set_ca_address(ambient_xds_options* opts, const char* address) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (address == nullptr) return NullArgument("address");
    opts->ca_address = address;
    return absl::OkStatus();
  });
}

ambient_error* ambient_xds_options_set_roots_pem_file(ambient_xds_options* opts, const char* path) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (path == nullptr) return NullArgument("path");
    opts->connection.roots_pem_file = path;
    return absl::OkStatus();
  });
}

ambient_error* ambient_xds_options_set_server_name(ambient_xds_options* opts,
                                                   const char* server_name) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (server_name == nullptr) return NullArgument("server_name");
    if (*server_name == '\0') return absl::InvalidArgumentError("server_name must not be empty");
    opts->connection.server_name = server_name;
    return absl::OkStatus();
  });
}

ambient_error* ambient_xds_options_set_token_file(ambient_xds_options* opts, const char* path) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (path == nullptr) return NullArgument("path");
    opts->connection.token_file = path;
    return absl::OkStatus();
  });
}

ambient_error* ambient_xds_options_set_cluster_id(ambient_xds_options* opts,
                                                  const char* cluster_id) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (cluster_id == nullptr) return NullArgument("cluster_id");
    if (*cluster_id == '\0') return absl::InvalidArgumentError("cluster_id must not be empty");
    opts->connection.cluster_id = cluster_id;
    return absl::OkStatus();
  });
}

ambient_error* ambient_xds_options_set_node_name(ambient_xds_options* opts, const char* node_name) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (node_name == nullptr) return NullArgument("node_name");
    if (*node_name == '\0') return absl::InvalidArgumentError("node_name must not be empty");
    opts->node.node_name = node_name;
    return absl::OkStatus();
  });
}

ambient_error* ambient_xds_options_set_pod(ambient_xds_options* opts, const char* name,
                                           const char* ns) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (name == nullptr) return NullArgument("name");
    if (ns == nullptr) return NullArgument("ns");
    opts->node.pod_name = name;
    opts->node.pod_namespace = ns;
    return absl::OkStatus();
  });
}

ambient_error* ambient_xds_options_set_instance_ip(ambient_xds_options* opts, const char* ip) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (ip == nullptr) return NullArgument("ip");
    if (*ip == '\0') return absl::InvalidArgumentError("instance ip must not be empty");
    opts->node.instance_ip = ip;
    return absl::OkStatus();
  });
}

ambient_error* ambient_xds_options_add_metadata(ambient_xds_options* opts, const char* key,
                                                const char* value) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (key == nullptr) return NullArgument("key");
    if (value == nullptr) return NullArgument("value");
    if (*key == '\0') return absl::InvalidArgumentError("metadata key must not be empty");
    opts->node.metadata.emplace_back(key, value);
    return absl::OkStatus();
  });
}

}  // extern "C"
