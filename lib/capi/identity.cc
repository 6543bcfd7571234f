// C ABI shims of the identity layer (ambient/c/identity.h): no logic here.
#include "ambient/c/identity.h"

#include <openssl/ssl.h>

#include <climits>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ambient/base/runtime_check.h"
#include "ambient/base/tls.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/spiffe_id.h"
#include "ambient/identity/svid_verifier.h"
#include "ambient/identity/tls.h"
#include "ambient/identity/trust_bundle.h"
#include "capi/internal.h"

namespace id = ambient::identity;
using ambient::capi::Guard;
using ambient::capi::GuardCode;
using ambient::capi::NullArgument;

static_assert(AMBIENT_SPIFFE_ID_TRUST_DOMAIN_TOO_LONG ==
              static_cast<int>(id::SpiffeIdError::kTrustDomainTooLong));
static_assert(AMBIENT_SPIFFE_ID_BAD_PATH_CHAR == static_cast<int>(id::SpiffeIdError::kBadPathChar));
static_assert(AMBIENT_SVID_UNEXPECTED_IDENTITY ==
              static_cast<int>(id::SvidError::kUnexpectedIdentity));
static_assert(AMBIENT_SVID_UNTRUSTED == static_cast<int>(id::SvidError::kUntrusted));
static_assert(AMBIENT_SVID_LEAF_ID_WITHOUT_PATH ==
              static_cast<int>(id::SvidError::kLeafIdWithoutPath));

struct ambient_spiffe_id {
  explicit ambient_spiffe_id(id::SpiffeId v)
      : value(std::move(v)), trust_domain(value.trust_domain_name()), path(value.path()) {}
  id::SpiffeId value;
  std::string trust_domain;
  std::string path;
};

struct ambient_istio_identity {
  id::IstioIdentity value;
};

struct ambient_trust_bundles {
  std::shared_ptr<id::TrustBundleSource> source;
};

struct ambient_verify_options {
  id::VerifyPolicy policy;
  id::UnixClock clock;
};

struct ambient_svid_verifier {
  std::shared_ptr<const id::SvidVerifier> verifier;
};

struct ambient_credentials {
  std::shared_ptr<id::CredentialHolder> holder;
};

ambient_credentials* ambient::capi::NewCredentials(std::shared_ptr<id::CredentialHolder> holder) {
  return new ambient_credentials{std::move(holder)};
}

namespace {

absl::string_view View(const char* p, size_t len) {
  return len == 0 ? absl::string_view() : absl::string_view(p, len);
}

// Data pointer with a length must not be NULL unless the length is 0.
absl::Status CheckBuffer(const char* p, size_t len, const char* name) {
  if (p == nullptr && len != 0) return NullArgument(name);
  return absl::OkStatus();
}

absl::Status NewId(const id::SpiffeId& value, ambient_spiffe_id** out) {
  *out = new ambient_spiffe_id(value);
  return absl::OkStatus();
}

absl::StatusOr<id::TrustDomain> ParseTrustDomain(const char* td) {
  if (td == nullptr) return NullArgument("trust_domain");
  return id::TrustDomain::Parse(td);
}

}  // namespace

extern "C" {

ambient_error* ambient_spiffe_id_parse(const char* s, size_t len, ambient_spiffe_id** out) {
  return Guard([&]() -> absl::Status {
    if (out == nullptr) return NullArgument("out");
    *out = nullptr;
    if (absl::Status st = CheckBuffer(s, len, "id"); !st.ok()) return st;
    absl::StatusOr<id::SpiffeId> parsed = id::SpiffeId::Parse(View(s, len));
    if (!parsed.ok()) return parsed.status();
    return NewId(*parsed, out);
  });
}

int ambient_spiffe_id_validate(const char* s, size_t len, ambient_spiffe_id_error* out_reason) {
  return GuardCode([&]() -> int {
    id::SpiffeIdError e = (s == nullptr && len != 0) ? id::SpiffeIdError::kEmpty
                                                     : id::ValidateSpiffeId(View(s, len));
    if (out_reason != nullptr) *out_reason = static_cast<ambient_spiffe_id_error>(e);
    return e == id::SpiffeIdError::kNone ? AMBIENT_OK : AMBIENT_ERR_INVALID_ARGUMENT;
  });
}

void ambient_spiffe_id_free(ambient_spiffe_id* v) { delete v; }

const char* ambient_spiffe_id_get0_string(const ambient_spiffe_id* v) {
  return v == nullptr ? "" : v->value.str().c_str();
}
const char* ambient_spiffe_id_get0_trust_domain(const ambient_spiffe_id* v) {
  return v == nullptr ? "" : v->trust_domain.c_str();
}
const char* ambient_spiffe_id_get0_path(const ambient_spiffe_id* v) {
  return v == nullptr ? "" : v->path.c_str();
}

ambient_error* ambient_istio_identity_parse(const char* uri, size_t len,
                                            ambient_istio_identity** out) {
  return Guard([&]() -> absl::Status {
    if (out == nullptr) return NullArgument("out");
    *out = nullptr;
    if (absl::Status st = CheckBuffer(uri, len, "uri"); !st.ok()) return st;
    absl::StatusOr<id::IstioIdentity> parsed = id::IstioIdentity::Parse(View(uri, len));
    if (!parsed.ok()) return parsed.status();
    *out = new ambient_istio_identity{*std::move(parsed)};
    return absl::OkStatus();
  });
}

void ambient_istio_identity_free(ambient_istio_identity* v) { delete v; }

const char* ambient_istio_identity_get0_trust_domain(const ambient_istio_identity* v) {
  return v == nullptr ? "" : v->value.trust_domain().c_str();
}
const char* ambient_istio_identity_get0_namespace(const ambient_istio_identity* v) {
  return v == nullptr ? "" : v->value.ns().c_str();
}
const char* ambient_istio_identity_get0_service_account(const ambient_istio_identity* v) {
  return v == nullptr ? "" : v->value.service_account().c_str();
}

ambient_error* ambient_trust_bundles_new(ambient_trust_bundles** out) {
  return Guard([&]() -> absl::Status {
    if (out == nullptr) return NullArgument("out");
    *out = nullptr;
    if (absl::Status st = ambient::EnsureTlsBackend(); !st.ok()) return st;
    *out = new ambient_trust_bundles{std::make_shared<id::TrustBundleSource>()};
    return absl::OkStatus();
  });
}

void ambient_trust_bundles_free(ambient_trust_bundles* b) { delete b; }

ambient_error* ambient_trust_bundles_set_pem(ambient_trust_bundles* b, const char* trust_domain,
                                             const char* pem, size_t len) {
  return Guard([&]() -> absl::Status {
    if (b == nullptr) return NullArgument("bundles");
    if (absl::Status st = CheckBuffer(pem, len, "pem"); !st.ok()) return st;
    absl::StatusOr<id::TrustDomain> td = ParseTrustDomain(trust_domain);
    if (!td.ok()) return td.status();
    auto bundle = id::TrustBundle::FromPem(*td, View(pem, len));
    if (!bundle.ok()) return bundle.status();
    b->source->Update(*std::move(bundle));
    return absl::OkStatus();
  });
}

ambient_error* ambient_trust_bundles_set_spiffe_json(ambient_trust_bundles* b,
                                                     const char* trust_domain, const char* json,
                                                     size_t len) {
  return Guard([&]() -> absl::Status {
    if (b == nullptr) return NullArgument("bundles");
    if (absl::Status st = CheckBuffer(json, len, "json"); !st.ok()) return st;
    absl::StatusOr<id::TrustDomain> td = ParseTrustDomain(trust_domain);
    if (!td.ok()) return td.status();
    auto bundle = id::TrustBundle::FromSpiffeJson(*td, View(json, len));
    if (!bundle.ok()) return bundle.status();
    b->source->Update(*std::move(bundle));
    return absl::OkStatus();
  });
}

ambient_error* ambient_trust_bundles_set_bundle_map_json(ambient_trust_bundles* b,
                                                         const char* json, size_t len) {
  return Guard([&]() -> absl::Status {
    if (b == nullptr) return NullArgument("bundles");
    if (absl::Status st = CheckBuffer(json, len, "json"); !st.ok()) return st;
    auto set = id::TrustBundleSet::FromSpiffeBundleMapJson(View(json, len));
    if (!set.ok()) return set.status();
    b->source->Set(*std::move(set));
    return absl::OkStatus();
  });
}

ambient_error* ambient_trust_bundles_remove(ambient_trust_bundles* b, const char* trust_domain) {
  return Guard([&]() -> absl::Status {
    if (b == nullptr) return NullArgument("bundles");
    absl::StatusOr<id::TrustDomain> td = ParseTrustDomain(trust_domain);
    if (!td.ok()) return td.status();
    if (!b->source->Remove(*td)) {
      return absl::NotFoundError(absl::StrCat("no trust bundle for \"", td->name(), "\""));
    }
    return absl::OkStatus();
  });
}

size_t ambient_trust_bundles_count(const ambient_trust_bundles* b) {
  if (b == nullptr) return 0;
  int n = GuardCode([&] {
    size_t size = b->source->Get()->size();
    return size > INT_MAX ? INT_MAX : static_cast<int>(size);
  });
  return n < 0 ? 0 : static_cast<size_t>(n);
}

ambient_verify_options* ambient_verify_options_new(void) {
  return ambient::capi::NewOrNull<ambient_verify_options>();
}

void ambient_verify_options_free(ambient_verify_options* o) { delete o; }

ambient_error* ambient_verify_options_add_expected_id(ambient_verify_options* o, const char* s,
                                                      size_t len) {
  return Guard([&]() -> absl::Status {
    if (o == nullptr) return NullArgument("options");
    if (absl::Status st = CheckBuffer(s, len, "id"); !st.ok()) return st;
    absl::StatusOr<id::SpiffeId> parsed = id::SpiffeId::Parse(View(s, len));
    if (!parsed.ok()) return parsed.status();
    o->policy.expected_ids.push_back(*std::move(parsed));
    return absl::OkStatus();
  });
}

ambient_error* ambient_verify_options_add_trust_domain(ambient_verify_options* o,
                                                       const char* trust_domain) {
  return Guard([&]() -> absl::Status {
    if (o == nullptr) return NullArgument("options");
    absl::StatusOr<id::TrustDomain> td = ParseTrustDomain(trust_domain);
    if (!td.ok()) return td.status();
    o->policy.allowed_trust_domains.push_back(*std::move(td));
    return absl::OkStatus();
  });
}

void ambient_verify_options_set_time(ambient_verify_options* o, int64_t unix_seconds) {
  if (o == nullptr) return;
  int rc = GuardCode([&] {
    if (unix_seconds < 0) {
      o->clock = nullptr;
    } else {
      o->clock = [unix_seconds] { return unix_seconds; };
    }
    return 0;
  });
  if (rc < 0) o->clock = nullptr;
}

void ambient_verify_options_set_clock(ambient_verify_options* o, ambient_clock_fn fn,
                                      void* user_data) {
  if (o == nullptr) return;
  int rc = GuardCode([&] {
    if (fn == nullptr) {
      o->clock = nullptr;
    } else {
      o->clock = [fn, user_data] { return fn(user_data); };
    }
    return 0;
  });
  if (rc < 0) o->clock = nullptr;
}

namespace {
// OwnedClockData frees a clock's user_data when the last clock copy goes.
struct OwnedClockData {
  OwnedClockData(void* user, void (*free_fn)(void*)) : user(user), free_fn(free_fn) {}
  ~OwnedClockData() {
    if (free_fn != nullptr) free_fn(user);
  }
  OwnedClockData(const OwnedClockData&) = delete;
  OwnedClockData& operator=(const OwnedClockData&) = delete;
  void* user;
  void (*free_fn)(void*);
};
}  // namespace

void ambient_verify_options_set_clock_owned(ambient_verify_options* o, ambient_clock_fn fn,
                                            void* user_data, void (*free_user_data)(void*)) {
  std::shared_ptr<OwnedClockData> owned;
  try {
    owned = std::make_shared<OwnedClockData>(user_data, free_user_data);
  } catch (...) {
    if (free_user_data != nullptr) free_user_data(user_data);
    if (o != nullptr) o->clock = nullptr;
    return;
  }
  if (o == nullptr) return;  // `owned` frees user_data now
  int rc = GuardCode([&] {
    if (fn == nullptr) {
      o->clock = nullptr;
    } else {
      o->clock = [fn, owned] { return fn(owned->user); };
    }
    return 0;
  });
  if (rc < 0) o->clock = nullptr;
}

ambient_error* ambient_svid_verifier_new(ambient_trust_bundles* bundles,
                                         const ambient_verify_options* options,
                                         ambient_svid_verifier** out) {
  return Guard([&]() -> absl::Status {
    if (out == nullptr) return NullArgument("out");
    *out = nullptr;
    if (bundles == nullptr) return NullArgument("bundles");
    id::VerifyPolicy policy = options != nullptr ? options->policy : id::VerifyPolicy{};
    id::UnixClock clock = options != nullptr ? options->clock : id::UnixClock{};
    auto v = id::SvidVerifier::Create(bundles->source, std::move(policy), std::move(clock));
    if (!v.ok()) return v.status();
    *out = new ambient_svid_verifier{*std::move(v)};
    return absl::OkStatus();
  });
}

void ambient_svid_verifier_free(ambient_svid_verifier* v) { delete v; }

ambient_error* ambient_svid_verifier_verify_pem(const ambient_svid_verifier* v, const char* pem,
                                                size_t len, ambient_spiffe_id** out_id) {
  return Guard([&]() -> absl::Status {
    if (out_id != nullptr) *out_id = nullptr;
    if (v == nullptr) return NullArgument("verifier");
    if (absl::Status st = CheckBuffer(pem, len, "pem"); !st.ok()) return st;
    absl::StatusOr<id::SpiffeId> peer = v->verifier->VerifyPem(View(pem, len));
    if (!peer.ok()) return peer.status();
    if (out_id != nullptr) return NewId(*peer, out_id);
    return absl::OkStatus();
  });
}

ambient_error* ambient_svid_verifier_verify_der(const ambient_svid_verifier* v,
                                                const uint8_t* const* certs, const size_t* lens,
                                                size_t n, ambient_spiffe_id** out_id) {
  return Guard([&]() -> absl::Status {
    if (out_id != nullptr) *out_id = nullptr;
    if (v == nullptr) return NullArgument("verifier");
    if (n != 0 && (certs == nullptr || lens == nullptr)) return NullArgument("certs");
    std::vector<absl::string_view> chain;
    chain.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (certs[i] == nullptr && lens[i] != 0) return NullArgument("certs[i]");
      chain.emplace_back(reinterpret_cast<const char*>(certs[i]), lens[i]);
    }
    absl::StatusOr<id::SpiffeId> peer = v->verifier->VerifyDer(chain);
    if (!peer.ok()) return peer.status();
    if (out_id != nullptr) return NewId(*peer, out_id);
    return absl::OkStatus();
  });
}

ambient_error* ambient_credentials_new_pem(const char* chain_pem, size_t chain_len,
                                           const char* key_pem, size_t key_len,
                                           ambient_credentials** out) {
  return Guard([&]() -> absl::Status {
    if (out == nullptr) return NullArgument("out");
    *out = nullptr;
    if (absl::Status st = CheckBuffer(chain_pem, chain_len, "chain_pem"); !st.ok()) return st;
    if (absl::Status st = CheckBuffer(key_pem, key_len, "key_pem"); !st.ok()) return st;
    auto creds = id::Credentials::FromPem(View(chain_pem, chain_len), View(key_pem, key_len));
    if (!creds.ok()) return creds.status();
    *out = new ambient_credentials{std::make_shared<id::CredentialHolder>(*std::move(creds))};
    return absl::OkStatus();
  });
}

void ambient_credentials_free(ambient_credentials* c) { delete c; }

ambient_error* ambient_credentials_rotate_pem(ambient_credentials* c, const char* chain_pem,
                                              size_t chain_len, const char* key_pem,
                                              size_t key_len) {
  return Guard([&]() -> absl::Status {
    if (c == nullptr) return NullArgument("credentials");
    if (absl::Status st = CheckBuffer(chain_pem, chain_len, "chain_pem"); !st.ok()) return st;
    if (absl::Status st = CheckBuffer(key_pem, key_len, "key_pem"); !st.ok()) return st;
    auto creds = id::Credentials::FromPem(View(chain_pem, chain_len), View(key_pem, key_len));
    if (!creds.ok()) return creds.status();
    c->holder->Set(*std::move(creds));
    return absl::OkStatus();
  });
}

ambient_error* ambient_credentials_get1_id(const ambient_credentials* c, ambient_spiffe_id** out) {
  return Guard([&]() -> absl::Status {
    if (out == nullptr) return NullArgument("out");
    *out = nullptr;
    if (c == nullptr) return NullArgument("credentials");
    auto current = c->holder->Get();
    if (current == nullptr) return absl::FailedPreconditionError("no credentials");
    return NewId(current->id(), out);
  });
}

int64_t ambient_credentials_not_before(const ambient_credentials* c) {
  if (c == nullptr) return 0;
  auto current = c->holder->Get();
  return current == nullptr ? 0 : current->not_before();
}

int64_t ambient_credentials_not_after(const ambient_credentials* c) {
  if (c == nullptr) return 0;
  auto current = c->holder->Get();
  return current == nullptr ? 0 : current->not_after();
}

int64_t ambient_credentials_refresh_at(const ambient_credentials* c) {
  if (c == nullptr) return 0;
  auto current = c->holder->Get();
  return current == nullptr ? 0 : current->refresh_at();
}

ambient_error* ambient_ssl_ctx_set_verifier(void* ssl_ctx, const ambient_svid_verifier* v) {
  return Guard([&]() -> absl::Status {
    if (ssl_ctx == nullptr) return NullArgument("ssl_ctx");
    if (v == nullptr) return NullArgument("verifier");
    return id::InstallVerifier(static_cast<SSL_CTX*>(ssl_ctx), v->verifier);
  });
}

ambient_error* ambient_ssl_set_verifier(void* ssl, const ambient_svid_verifier* v) {
  return Guard([&]() -> absl::Status {
    if (ssl == nullptr) return NullArgument("ssl");
    if (v == nullptr) return NullArgument("verifier");
    return id::InstallVerifier(static_cast<SSL*>(ssl), v->verifier);
  });
}

ambient_error* ambient_ssl_ctx_use_credentials(void* ssl_ctx, ambient_credentials* c) {
  return Guard([&]() -> absl::Status {
    if (ssl_ctx == nullptr) return NullArgument("ssl_ctx");
    if (c == nullptr) return NullArgument("credentials");
    return id::InstallCredentials(static_cast<SSL_CTX*>(ssl_ctx), c->holder);
  });
}

ambient_error* ambient_ssl_get1_peer_id(const void* ssl, ambient_spiffe_id** out) {
  return Guard([&]() -> absl::Status {
    if (out == nullptr) return NullArgument("out");
    *out = nullptr;
    if (ssl == nullptr) return NullArgument("ssl");
    const id::SpiffeId* peer = id::PeerIdentity(static_cast<const SSL*>(ssl));
    if (peer == nullptr) return absl::NotFoundError("no peer identity verified on this connection");
    return NewId(*peer, out);
  });
}

ambient_error* ambient_ssl_get1_verify_error(const void* ssl) {
  return Guard([&]() -> absl::Status {
    if (ssl == nullptr) return NullArgument("ssl");
    return id::VerifyFailure(static_cast<const SSL*>(ssl));
  });
}

}  // extern "C"
