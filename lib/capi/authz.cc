// C ABI shims for lib/authz. No logic: argument checks and conversions only.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "ambient/authz/policy_codec.h"
#include "ambient/authz/policy_store.h"
#include "ambient/c/authz.h"
#include "capi/internal.h"

using ambient::IpAddress;
using ambient::authz::Connection;
using ambient::authz::Decision;
using ambient::capi::Guard;
using ambient::capi::GuardCode;
using ambient::capi::NullArgument;

struct ambient_authz_store {
  ambient::authz::PolicyStore store;
};

struct ambient_authz_decision {
  Decision decision;
};

struct ambient_authz_request {
  ambient::authz::Workload workload;
  Connection conn;
  bool has_namespace = false;
  bool has_src = false;
  bool has_dst = false;
};

namespace {

// ToIpPort reads a sockaddr_in/in6; false for anything else.
bool ToIpPort(const struct sockaddr* sa, IpAddress* ip, uint16_t* port) {
  if (sa == nullptr) return false;
  socklen_t len = sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  absl::StatusOr<ambient::SocketAddress> a = ambient::SocketAddress::FromSockaddr(sa, len);
  if (!a.ok()) return false;
  *ip = a->ip();
  *port = a->port();
  return true;
}

}  // namespace

extern "C" {

ambient_authz_store* ambient_authz_store_new(void) {
  return ambient::capi::NewOrNull<ambient_authz_store>();
}

void ambient_authz_store_free(ambient_authz_store* store) { delete store; }

ambient_error* ambient_authz_store_replace_json(ambient_authz_store* store, const char* json,
                                                size_t json_len) {
  return Guard([&]() -> absl::Status {
    if (store == nullptr) return NullArgument("store");
    if (json == nullptr) return NullArgument("json");
    auto policies = ambient::authz::DecodePolicyListJson(absl::string_view(json, json_len));
    if (!policies.ok()) return policies.status();
    return store->store.Replace(std::move(*policies));
  });
}

ambient_error* ambient_authz_store_upsert_proto(ambient_authz_store* store, const uint8_t* bytes,
                                                size_t len) {
  return Guard([&]() -> absl::Status {
    if (store == nullptr) return NullArgument("store");
    if (bytes == nullptr && len != 0) return NullArgument("bytes");
    auto policy = ambient::authz::DecodePolicyProto(
        absl::string_view(reinterpret_cast<const char*>(bytes), len));
    if (!policy.ok()) return policy.status();
    store->store.Upsert(std::move(*policy));
    return absl::OkStatus();
  });
}

ambient_error* ambient_authz_store_upsert_json(ambient_authz_store* store, const char* json,
                                               size_t json_len) {
  return Guard([&]() -> absl::Status {
    if (store == nullptr) return NullArgument("store");
    if (json == nullptr) return NullArgument("json");
    auto policy = ambient::authz::DecodePolicyJson(absl::string_view(json, json_len));
    if (!policy.ok()) return policy.status();
    store->store.Upsert(std::move(*policy));
    return absl::OkStatus();
  });
}

int ambient_authz_store_remove(ambient_authz_store* store, const char* ns, const char* name) {
  return GuardCode([&]() -> int {
    if (store == nullptr || ns == nullptr || name == nullptr) return AMBIENT_ERR_INVALID_ARGUMENT;
    return store->store.Remove(absl::StrCat(ns, "/", name)) ? 1 : 0;
  });
}

size_t ambient_authz_store_size(const ambient_authz_store* store) {
  return store == nullptr ? 0 : store->store.size();
}

ambient_authz_decision* ambient_authz_decision_new(void) {
  return ambient::capi::NewOrNull<ambient_authz_decision>();
}

void ambient_authz_decision_free(ambient_authz_decision* decision) { delete decision; }

const char* ambient_authz_decision_get0_reason(const ambient_authz_decision* decision) {
  return decision == nullptr ? "" : decision->decision.reason.c_str();
}

const char* ambient_authz_decision_get0_policy(const ambient_authz_decision* decision) {
  return decision == nullptr ? "" : decision->decision.policy.c_str();
}

size_t ambient_authz_decision_num_dry_run_hits(const ambient_authz_decision* decision) {
  return decision == nullptr ? 0 : decision->decision.dry_run_hits.size();
}

const char* ambient_authz_decision_get0_dry_run_hit(const ambient_authz_decision* decision,
                                                    size_t i) {
  if (decision == nullptr || i >= decision->decision.dry_run_hits.size()) return "";
  return decision->decision.dry_run_hits[i].c_str();
}

ambient_authz_request* ambient_authz_request_new(void) {
  return ambient::capi::NewOrNull<ambient_authz_request>();
}

void ambient_authz_request_free(ambient_authz_request* req) { delete req; }

ambient_error* ambient_authz_request_set_workload_namespace(ambient_authz_request* req,
                                                            const char* ns) {
  return Guard([&]() -> absl::Status {
    if (req == nullptr) return NullArgument("req");
    if (ns == nullptr) return NullArgument("ns");
    req->workload.ns = ns;
    req->has_namespace = true;
    return absl::OkStatus();
  });
}

ambient_error* ambient_authz_request_set_workload_policies(ambient_authz_request* req,
                                                           const char* const* keys, size_t n) {
  return Guard([&]() -> absl::Status {
    if (req == nullptr) return NullArgument("req");
    std::vector<std::string> copied;
    if (absl::Status s = ambient::capi::CopyStrings(keys, n, "keys", "keys[i]", &copied); !s.ok()) {
      return s;
    }
    req->workload.policies = std::move(copied);
    return absl::OkStatus();
  });
}

ambient_error* ambient_authz_request_set_source(ambient_authz_request* req,
                                                const struct sockaddr* src) {
  return Guard([&]() -> absl::Status {
    if (req == nullptr) return NullArgument("req");
    if (src == nullptr) return NullArgument("src");
    if (!ToIpPort(src, &req->conn.src_ip, &req->conn.src_port)) {
      return absl::InvalidArgumentError("src: not an AF_INET or AF_INET6 address");
    }
    req->has_src = true;
    return absl::OkStatus();
  });
}

ambient_error* ambient_authz_request_set_destination(ambient_authz_request* req,
                                                     const struct sockaddr* dst) {
  return Guard([&]() -> absl::Status {
    if (req == nullptr) return NullArgument("req");
    if (dst == nullptr) return NullArgument("dst");
    if (!ToIpPort(dst, &req->conn.dst_ip, &req->conn.dst_port)) {
      return absl::InvalidArgumentError("dst: not an AF_INET or AF_INET6 address");
    }
    req->has_dst = true;
    return absl::OkStatus();
  });
}

ambient_error* ambient_authz_request_set_source_identity(ambient_authz_request* req,
                                                         const char* spiffe_id) {
  return Guard([&]() -> absl::Status {
    if (req == nullptr) return NullArgument("req");
    if (spiffe_id == nullptr) {
      req->conn.src_identity.reset();
      return absl::OkStatus();
    }
    auto id = ambient::identity::IstioIdentity::Parse(spiffe_id);
    if (!id.ok()) return id.status();
    req->conn.src_identity = std::move(*id);
    return absl::OkStatus();
  });
}

int ambient_authz_check(const ambient_authz_store* store, const ambient_authz_request* req,
                        ambient_authz_decision* out_decision) {
  return GuardCode([&]() -> int {
    if (store == nullptr || req == nullptr) return AMBIENT_ERR_INVALID_ARGUMENT;
    if (!req->has_namespace || !req->has_src || !req->has_dst) {
      return AMBIENT_ERR_INVALID_ARGUMENT;
    }
    Decision d = store->store.Check(req->workload, req->conn);
    const int allowed = d.allowed ? 1 : 0;
    if (out_decision != nullptr) out_decision->decision = std::move(d);
    return allowed;
  });
}

}  // extern "C"
