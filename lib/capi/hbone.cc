// C ABI shims for the hbone layer (ambient/c/hbone.h). No logic here beyond
// converting arguments and results.
#include "ambient/c/hbone.h"

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ambient/base/runtime_check.h"
#include "ambient/base/tls.h"
#include "ambient/hbone/authority.h"
#include "ambient/hbone/connection.h"
#include "ambient/hbone/tls_context.h"
#include "ambient/identity/trust_bundle.h"
#include "capi/internal.h"

using ambient::capi::Guard;
using ambient::capi::GuardCode;
using ambient::capi::NullArgument;
using ambient::capi::ToCode;
namespace hbone = ambient::hbone;
namespace identity = ambient::identity;

struct ambient_hbone_tls {
  ambient_hbone_role role = AMBIENT_HBONE_CLIENT;
  ambient::tls::UniquePtr<SSL_CTX> ctx;
  std::shared_ptr<identity::TrustBundleSource> bundles;  // null for a host SSL_CTX
  std::string identity;
};

struct ambient_hbone_tls_options {
  std::optional<std::string> cert_chain_pem;
  std::optional<std::string> key_pem;
  std::optional<std::string> bundle;
  ~ambient_hbone_tls_options() {
    if (key_pem.has_value()) OPENSSL_cleanse(key_pem->data(), key_pem->size());
  }
};

// Read by lib/capi/runtime.cc (declared in capi/internal.h; not exported).
namespace ambient::capi {
SSL_CTX* HboneTlsContext(const ambient_hbone_tls* tls) { return tls->ctx.get(); }
bool HboneTlsIsServer(const ambient_hbone_tls* tls) { return tls->role == AMBIENT_HBONE_SERVER; }
std::shared_ptr<identity::TrustBundleSource> HboneTlsBundles(const ambient_hbone_tls* tls) {
  return tls->bundles;
}
const std::string& HboneTlsIdentity(const ambient_hbone_tls* tls) { return tls->identity; }
}  // namespace ambient::capi

struct ambient_hbone_conn {
  std::unique_ptr<hbone::Connection> conn;
  hbone::Event last;
  std::string message;
};

namespace {

absl::Time TimeOf(uint64_t ns) {
  return absl::UnixEpoch() +
         absl::Nanoseconds(static_cast<int64_t>(ns > INT64_MAX ? INT64_MAX : ns));
}

// Adopt wraps a context the hbone layer built from PEM as a C handle.
absl::Status Adopt(ambient_hbone_role role, absl::StatusOr<hbone::PemTlsContext> made,
                   ambient_hbone_tls** out) {
  if (!made.ok()) return made.status();
  auto tls = std::make_unique<ambient_hbone_tls>();
  tls->role = role;
  tls->ctx = std::move(made->ctx);
  tls->bundles = std::move(made->bundles);
  tls->identity = made->credentials->id().str();
  *out = tls.release();
  return absl::OkStatus();
}

hbone::Role RoleOf(ambient_hbone_role role) {
  return role == AMBIENT_HBONE_SERVER ? hbone::Role::kServer : hbone::Role::kClient;
}

int ClampCount(size_t n) { return n > INT32_MAX ? INT32_MAX : static_cast<int>(n); }

}  // namespace

extern "C" {

ambient_hbone_tls_options* ambient_hbone_tls_options_new(void) {
  return ambient::capi::NewOrNull<ambient_hbone_tls_options>();
}

void ambient_hbone_tls_options_free(ambient_hbone_tls_options* opts) { delete opts; }

ambient_error* ambient_hbone_tls_options_set_cert_chain_pem(ambient_hbone_tls_options* opts,
                                                            const char* pem, size_t len) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (pem == nullptr) return NullArgument("pem");
    opts->cert_chain_pem.emplace(pem, len);
    return absl::OkStatus();
  });
}

ambient_error* ambient_hbone_tls_options_set_private_key_pem(ambient_hbone_tls_options* opts,
                                                             const char* pem, size_t len) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (pem == nullptr) return NullArgument("pem");
    if (opts->key_pem.has_value()) OPENSSL_cleanse(opts->key_pem->data(), opts->key_pem->size());
    opts->key_pem.emplace(pem, len);
    return absl::OkStatus();
  });
}

ambient_error* ambient_hbone_tls_options_set_trust_bundle(ambient_hbone_tls_options* opts,
                                                          const char* bundle, size_t len) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (bundle == nullptr) return NullArgument("bundle");
    opts->bundle.emplace(bundle, len);
    return absl::OkStatus();
  });
}

ambient_error* ambient_hbone_tls_new(ambient_hbone_role role, const ambient_hbone_tls_options* opts,
                                     ambient_hbone_tls** out) {
  return Guard([&]() -> absl::Status {
    if (opts == nullptr) return NullArgument("opts");
    if (out == nullptr) return NullArgument("out");
    if (!opts->cert_chain_pem) return absl::InvalidArgumentError("no certificate chain set");
    if (!opts->key_pem) return absl::InvalidArgumentError("no private key set");
    if (!opts->bundle) return absl::InvalidArgumentError("no trust bundle set");
    return Adopt(role,
                 hbone::NewContextFromPem(RoleOf(role), *opts->cert_chain_pem, *opts->key_pem,
                                          *opts->bundle),
                 out);
  });
}

ambient_error* ambient_hbone_tls_new_from_files(ambient_hbone_role role, const char* cert_path,
                                                const char* key_path, const char* bundle_path,
                                                ambient_hbone_tls** out) {
  return Guard([&]() -> absl::Status {
    if (cert_path == nullptr) return NullArgument("certificate");
    if (key_path == nullptr) return NullArgument("key");
    if (bundle_path == nullptr) return NullArgument("bundle");
    if (out == nullptr) return NullArgument("out");
    return Adopt(role, hbone::NewContextFromFiles(RoleOf(role), cert_path, key_path, bundle_path),
                 out);
  });
}

ambient_error* ambient_hbone_tls_new_from_ssl_ctx(ambient_hbone_role role, void* ssl_ctx,
                                                  ambient_hbone_tls** out) {
  return Guard([&]() -> absl::Status {
    if (ssl_ctx == nullptr) return NullArgument("ssl_ctx");
    if (out == nullptr) return NullArgument("out");
    if (absl::Status s = ambient::EnsureTlsBackend(); !s.ok()) return s;
    auto* ctx = static_cast<SSL_CTX*>(ssl_ctx);
    absl::Status st = role == AMBIENT_HBONE_SERVER ? hbone::PrepareServerContext(ctx)
                                                   : hbone::PrepareClientContext(ctx);
    if (!st.ok()) return st;
    if ((SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER) == 0) {
      return absl::InvalidArgumentError(
          "the SSL_CTX does not verify peers (SSL_VERIFY_PEER): HBONE needs mutual TLS");
    }
    auto tls = std::make_unique<ambient_hbone_tls>();
    tls->role = role;
    SSL_CTX_up_ref(ctx);
    tls->ctx.reset(ctx);
    *out = tls.release();
    return absl::OkStatus();
  });
}

const char* ambient_hbone_tls_get0_identity(const ambient_hbone_tls* tls) {
  return tls == nullptr ? "" : tls->identity.c_str();
}

void ambient_hbone_tls_free(ambient_hbone_tls* tls) { delete tls; }

ambient_error* ambient_hbone_conn_new(const ambient_hbone_tls* tls, const char* const* expected_ids,
                                      size_t n_expected, ambient_hbone_conn** out) {
  return Guard([&]() -> absl::Status {
    if (tls == nullptr) return NullArgument("tls");
    if (out == nullptr) return NullArgument("out");
    hbone::ConnectionOptions o;
    o.role = RoleOf(tls->role);
    o.ssl_ctx = tls->ctx.get();
    std::vector<std::string> expected;
    if (absl::Status s = ambient::capi::CopyStrings(expected_ids, n_expected, "expected_ids",
                                                    "expected_ids[i]", &expected);
        !s.ok()) {
      return s;
    }
    absl::StatusOr<std::vector<ambient::identity::SpiffeId>> parsed =
        ambient::identity::ParseSpiffeIdList(expected, "expected_ids");
    if (!parsed.ok()) return parsed.status();
    o.expected_identities = *std::move(parsed);
    if (o.role == hbone::Role::kClient) o.bundles = tls->bundles;
    absl::StatusOr<std::unique_ptr<hbone::Connection>> conn = hbone::Connection::New(std::move(o));
    if (!conn.ok()) return conn.status();
    auto c = std::make_unique<ambient_hbone_conn>();
    c->conn = std::move(*conn);
    *out = c.release();
    return absl::OkStatus();
  });
}

void ambient_hbone_conn_free(ambient_hbone_conn* conn) { delete conn; }

void ambient_hbone_conn_start(ambient_hbone_conn* conn, uint64_t now_ns) {
  if (conn == nullptr) return;
  GuardCode([&] {
    conn->conn->Start(TimeOf(now_ns));
    return 0;
  });
}

int ambient_hbone_conn_receive(ambient_hbone_conn* conn, const uint8_t* data, size_t len,
                               uint64_t now_ns) {
  return GuardCode([&] {
    if (conn == nullptr || (data == nullptr && len > 0)) return int{AMBIENT_ERR_INVALID_ARGUMENT};
    return ToCode(conn->conn->Receive(absl::MakeConstSpan(data, len), TimeOf(now_ns)));
  });
}

void ambient_hbone_conn_receive_eof(ambient_hbone_conn* conn, uint64_t now_ns) {
  if (conn == nullptr) return;
  GuardCode([&] {
    conn->conn->ReceiveEof(TimeOf(now_ns));
    return 0;
  });
}

int ambient_hbone_conn_pending_output(ambient_hbone_conn* conn, const uint8_t** data, size_t* len) {
  return GuardCode([&] {
    if (conn == nullptr || data == nullptr || len == nullptr) {
      return int{AMBIENT_ERR_INVALID_ARGUMENT};
    }
    absl::Span<const uint8_t> out = conn->conn->PendingOutput();
    *data = out.data();
    *len = out.size();
    return 0;
  });
}

void ambient_hbone_conn_consume_output(ambient_hbone_conn* conn, size_t n) {
  if (conn == nullptr) return;
  GuardCode([&] {
    conn->conn->ConsumeOutput(n);
    return 0;
  });
}

uint64_t ambient_hbone_conn_next_deadline(const ambient_hbone_conn* conn) {
  if (conn == nullptr) return UINT64_MAX;
  absl::Time t = conn->conn->NextDeadline();
  if (t == absl::InfiniteFuture()) return UINT64_MAX;
  int64_t ns = absl::ToUnixNanos(t);
  return ns < 0 ? 0 : static_cast<uint64_t>(ns);
}

void ambient_hbone_conn_on_timeout(ambient_hbone_conn* conn, uint64_t now_ns) {
  if (conn == nullptr) return;
  GuardCode([&] {
    conn->conn->OnTimeout(TimeOf(now_ns));
    return 0;
  });
}

int ambient_hbone_conn_poll_event(ambient_hbone_conn* conn, ambient_hbone_event* event) {
  return GuardCode([&] {
    if (conn == nullptr || event == nullptr) return int{AMBIENT_ERR_INVALID_ARGUMENT};
    if (!conn->conn->PollEvent(&conn->last)) return 0;
    const hbone::Event& ev = conn->last;
    std::memset(event, 0, sizeof(*event));
    event->type = static_cast<ambient_hbone_event_type>(static_cast<int>(ev.type));
    event->stream = ev.stream;
    event->http_status = ev.http_status;
    event->code = ToCode(ev.status);
    conn->message = std::string(ev.status.message());
    event->message = conn->message.c_str();
    event->message_len = conn->message.size();
    event->authority = ev.request.authority.c_str();
    event->authority_len = ev.request.authority.size();
    event->n_headers = ev.request.headers.size();
    return 1;
  });
}

int ambient_hbone_conn_request_header(const ambient_hbone_conn* conn, size_t index,
                                      ambient_hbone_header* header) {
  if (conn == nullptr || header == nullptr) return AMBIENT_ERR_INVALID_ARGUMENT;
  if (index >= conn->last.request.headers.size()) return AMBIENT_ERR_OUT_OF_RANGE;
  const hbone::Header& h = conn->last.request.headers[index];
  header->name = h.name.data();
  header->name_len = h.name.size();
  header->value = h.value.data();
  header->value_len = h.value.size();
  return 0;
}

const char* ambient_hbone_conn_get0_peer_identity(const ambient_hbone_conn* conn) {
  if (conn == nullptr) return "";
  const std::optional<ambient::identity::SpiffeId>& id = conn->conn->PeerIdentity();
  return id ? id->str().c_str() : "";
}

int ambient_hbone_conn_is_closed(const ambient_hbone_conn* conn) {
  return conn != nullptr && conn->conn->IsClosed() ? 1 : 0;
}

int ambient_hbone_conn_can_open_stream(const ambient_hbone_conn* conn) {
  return conn != nullptr && conn->conn->CanOpenStream() ? 1 : 0;
}

void ambient_hbone_conn_drain(ambient_hbone_conn* conn) {
  if (conn == nullptr) return;
  GuardCode([&] {
    conn->conn->Drain();
    return 0;
  });
}

int32_t ambient_hbone_conn_open_stream(ambient_hbone_conn* conn, const char* authority,
                                       const ambient_hbone_header* headers, size_t n_headers) {
  return GuardCode([&]() -> int {
    if (conn == nullptr || authority == nullptr || (headers == nullptr && n_headers > 0)) {
      return AMBIENT_ERR_INVALID_ARGUMENT;
    }
    hbone::ConnectRequest req;
    req.authority = authority;
    for (size_t i = 0; i < n_headers; ++i) {
      if (headers[i].name == nullptr || (headers[i].value == nullptr && headers[i].value_len > 0)) {
        return AMBIENT_ERR_INVALID_ARGUMENT;
      }
      req.headers.push_back(
          {std::string(headers[i].name, headers[i].name_len),
           std::string(headers[i].value == nullptr ? "" : headers[i].value, headers[i].value_len)});
    }
    absl::StatusOr<hbone::StreamId> id = conn->conn->OpenStream(req);
    if (!id.ok()) return ToCode(id.status());
    return *id;
  });
}

ambient_error* ambient_hbone_authority_check(const char* text, size_t len) {
  return Guard([&]() -> absl::Status {
    if (text == nullptr && len > 0) return NullArgument("text");
    return ambient::hbone::ParseAuthority(absl::string_view(text, len)).status();
  });
}

int ambient_hbone_conn_accept_stream(ambient_hbone_conn* conn, int32_t stream) {
  return GuardCode([&] {
    if (conn == nullptr) return int{AMBIENT_ERR_INVALID_ARGUMENT};
    return ToCode(conn->conn->AcceptStream(stream));
  });
}

int ambient_hbone_conn_reject_stream(ambient_hbone_conn* conn, int32_t stream, int http_status) {
  return GuardCode([&] {
    if (conn == nullptr) return int{AMBIENT_ERR_INVALID_ARGUMENT};
    return ToCode(conn->conn->RejectStream(stream, http_status));
  });
}

int ambient_hbone_stream_write(ambient_hbone_conn* conn, int32_t stream, const uint8_t* data,
                               size_t len) {
  return GuardCode([&] {
    if (conn == nullptr || (data == nullptr && len > 0)) return int{AMBIENT_ERR_INVALID_ARGUMENT};
    if (len > INT32_MAX) len = INT32_MAX;
    absl::StatusOr<size_t> n = conn->conn->StreamWrite(stream, absl::MakeConstSpan(data, len));
    if (!n.ok()) return ToCode(n.status());
    return ClampCount(*n);
  });
}

int ambient_hbone_stream_shutdown_write(ambient_hbone_conn* conn, int32_t stream) {
  return GuardCode([&] {
    if (conn == nullptr) return int{AMBIENT_ERR_INVALID_ARGUMENT};
    return ToCode(conn->conn->StreamShutdownWrite(stream));
  });
}

int ambient_hbone_stream_read(ambient_hbone_conn* conn, int32_t stream, uint8_t* buf, size_t len) {
  return GuardCode([&] {
    if (conn == nullptr || (buf == nullptr && len > 0)) return int{AMBIENT_ERR_INVALID_ARGUMENT};
    if (len > INT32_MAX) len = INT32_MAX;
    return ClampCount(conn->conn->StreamRead(stream, absl::MakeSpan(buf, len)));
  });
}

int ambient_hbone_stream_at_eof(const ambient_hbone_conn* conn, int32_t stream) {
  return conn != nullptr && conn->conn->StreamAtEof(stream) ? 1 : 0;
}

int ambient_hbone_stream_reset(ambient_hbone_conn* conn, int32_t stream) {
  return GuardCode([&] {
    if (conn == nullptr) return int{AMBIENT_ERR_INVALID_ARGUMENT};
    return ToCode(conn->conn->StreamReset(stream));
  });
}

int ambient_hbone_stream_reset_with(ambient_hbone_conn* conn, int32_t stream,
                                    ambient_hbone_reset_code code) {
  // A C caller may pass any int: copy the bits out instead of reading an
  // out-of-range value as the enum type.
  int wire;
  std::memcpy(&wire, &code, sizeof(wire));
  return GuardCode([&] {
    if (conn == nullptr) return int{AMBIENT_ERR_INVALID_ARGUMENT};
    ambient::hbone::ResetCode reset;
    switch (wire) {
      case AMBIENT_HBONE_RESET_CANCEL:
        reset = ambient::hbone::ResetCode::kCancel;
        break;
      case AMBIENT_HBONE_RESET_CONNECT_ERROR:
        reset = ambient::hbone::ResetCode::kConnectError;
        break;
      default:
        return int{AMBIENT_ERR_INVALID_ARGUMENT};
    }
    return ToCode(conn->conn->StreamReset(stream, reset));
  });
}

}  // extern "C"
