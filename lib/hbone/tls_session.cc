// The TLS side of an HBONE connection: an SSL behind a BIO that reads
// the bytes the host lent and appends what it writes to the output queue.
#include "hbone/tls_session.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ambient/base/runtime_check.h"
#include "ambient/base/status.h"
#include "ambient/base/tls.h"
#include "ambient/identity/spiffe_id.h"
#include "ambient/identity/svid_verifier.h"
#include "ambient/identity/tls.h"
#include "ambient/identity/trust_bundle.h"
#include "hbone/byte_queue.h"
#include "hbone/peer_identity.h"
#include "hbone/tls_backend.h"

namespace ambient::hbone {

namespace {
constexpr uint8_t kAlpnH2[] = {2, 'h', '2'};
}  // namespace

struct TlsSession::Impl {
  Role role = Role::kClient;
  std::vector<identity::SpiffeId> expected_identities;
  tls::UniquePtr<SSL> ssl;
  ByteQueue* out = nullptr;
  absl::Span<const uint8_t> in;
  bool shutdown_sent = false;

  static int BioWrite(BIO* bio, const char* data, int len) {
    auto* self = static_cast<Impl*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (len <= 0) return 0;
    self->out->Append(absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(data),
                                                static_cast<size_t>(len)));
    return len;
  }

  static int BioRead(BIO* bio, char* out, int len) {
    auto* self = static_cast<Impl*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (len <= 0) return 0;
    if (self->in.empty()) {
      BIO_set_retry_read(bio);
      return -1;
    }
    size_t n = std::min(self->in.size(), static_cast<size_t>(len));
    std::memcpy(out, self->in.data(), n);
    self->in.remove_prefix(n);
    return static_cast<int>(n);
  }

  static long BioCtrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

  static BIO_METHOD* BioMethod() {
    static BIO_METHOD* const method = [] {
      BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ambient-hbone");
      BIO_meth_set_write(m, &Impl::BioWrite);
      BIO_meth_set_read(m, &Impl::BioRead);
      BIO_meth_set_ctrl(m, &Impl::BioCtrl);
      return m;
    }();
    return method;
  }
};

TlsSession::TlsSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsSession::~TlsSession() = default;

std::string TlsSession::LastError() {
  uint32_t e = ERR_get_error();
  std::string out;
  while (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
    e = ERR_get_error();
  }
  return out.empty() ? "no detail" : out;
}

void TlsSession::ClearErrors() { ERR_clear_error(); }

absl::Status TlsSession::CheckContext(ssl_ctx_st* ctx) {
  if (absl::Status s = EnsureTlsBackend(); !s.ok()) return s;
  if (ctx == nullptr) return absl::InvalidArgumentError("ssl_ctx must not be NULL");
  if ((SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER) == 0) {
    return absl::InvalidArgumentError(
        "the SSL_CTX does not verify peers (SSL_VERIFY_PEER): HBONE needs mutual TLS");
  }
  return absl::OkStatus();
}

// JoinIds renders `ids` for an error message, comma-separated.
std::string JoinIds(const std::vector<identity::SpiffeId>& ids) {
  return absl::StrJoin(
      ids, ", ", [](std::string* out, const identity::SpiffeId& id) { out->append(id.str()); });
}

absl::StatusOr<std::unique_ptr<TlsSession>> TlsSession::New(
    Role role, ssl_ctx_st* ctx, std::vector<identity::SpiffeId> expected_identities,
    std::shared_ptr<identity::TrustBundleSource> bundles, ByteQueue* out) {
  auto impl = std::make_unique<Impl>();
  impl->role = role;
  impl->expected_identities = std::move(expected_identities);
  impl->out = out;
  impl->ssl.reset(SSL_new(ctx));
  if (!impl->ssl) return absl::ResourceExhaustedError("SSL_new failed: " + LastError());
  SSL* ssl = impl->ssl.get();
  if (!SSL_set_min_proto_version(ssl, TLS1_3_VERSION) ||
      !SSL_set_max_proto_version(ssl, TLS1_3_VERSION)) {
    return absl::InternalError("cannot restrict TLS to 1.3");
  }
  SSL_set_options(ssl, SSL_OP_NO_TICKET);
  if (absl::Status st = internal::RestrictSession(ssl); !st.ok()) return st;
  if (role == Role::kClient) {
    if (SSL_set_alpn_protos(ssl, kAlpnH2, sizeof(kAlpnH2)) != 0) {
      return absl::ResourceExhaustedError("cannot set ALPN");
    }
    if (bundles != nullptr) {
      std::vector<identity::SpiffeId> expected = impl->expected_identities;
      absl::Status st;
      if (expected.empty()) {
        absl::StatusOr<std::shared_ptr<const identity::SvidVerifier>> v =
            identity::SvidVerifier::Create(std::move(bundles),
                                           identity::VerifyPolicy::AnyTrustDomain());
        st = v.ok() ? identity::InstallVerifier(ssl, *std::move(v)) : v.status();
      } else {
        st = identity::InstallClientVerifier(ssl, std::move(bundles), std::move(expected));
      }
      if (!st.ok()) return st;
    }
    SSL_set_connect_state(ssl);
  } else {
    SSL_set_accept_state(ssl);
  }
  BIO* bio = BIO_new(Impl::BioMethod());
  if (bio == nullptr) return absl::ResourceExhaustedError("BIO_new failed");
  BIO_set_data(bio, impl.get());
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl, bio, bio);  // one reference, used for both directions
  return std::unique_ptr<TlsSession>(new TlsSession(std::move(impl)));
}

void TlsSession::SetInput(absl::Span<const uint8_t> in) { impl_->in = in; }

absl::StatusOr<bool> TlsSession::Handshake() {
  SSL* ssl = impl_->ssl.get();
  int r = SSL_do_handshake(ssl);
  if (r == 1) return true;
  int err = SSL_get_error(ssl, r);
  if (err == SSL_ERROR_WANT_READ) return false;
  std::string why = LastError();
  absl::Status verify_failure = identity::VerifyFailure(ssl);
  long verify = SSL_get_verify_result(ssl);
  if (!verify_failure.ok()) {
    return Prefixed("TLS handshake failed: peer certificate rejected", verify_failure);
  }
  if (verify != X509_V_OK) {
    why = absl::StrCat("peer certificate rejected: ", X509_verify_cert_error_string(verify), " (",
                       why, ")");
  }
  return absl::UnauthenticatedError(absl::StrCat("TLS handshake failed: ", why));
}

absl::StatusOr<identity::SpiffeId> TlsSession::CheckPeer() {
  SSL* ssl = impl_->ssl.get();
  if (SSL_version(ssl) != TLS1_3_VERSION) {
    return absl::UnauthenticatedError("peer did not negotiate TLS 1.3");
  }
  const uint8_t* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  if (alpn_len != 2 || std::memcmp(alpn, "h2", 2) != 0) {
    return absl::UnauthenticatedError("peer did not negotiate ALPN h2");
  }
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  uint16_t suite = cipher == nullptr ? 0 : SSL_CIPHER_get_protocol_id(cipher);
  if (suite != 0x1301 && suite != 0x1302) {  // TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384
    return absl::UnauthenticatedError(
        absl::StrCat("peer negotiated a non-AES-GCM cipher suite (0x", absl::Hex(suite), ")"));
  }
  tls::UniquePtr<X509> peer = internal::PeerCertificate(ssl);
  if (!peer) return absl::UnauthenticatedError("peer presented no certificate");
  if (SSL_get_verify_result(ssl) != X509_V_OK) {
    return absl::UnauthenticatedError(
        absl::StrCat("peer certificate not verified: ",
                     X509_verify_cert_error_string(SSL_get_verify_result(ssl))));
  }
  // Prefer the identity ambient's verifier established; a host's own
  // SSL_CTX verification leaves it to us to read the URI SAN.
  absl::StatusOr<std::string> id;
  const identity::SpiffeId* verified = identity::PeerIdentity(ssl);
  if (verified != nullptr) {
    id = verified->str();
  } else {
    id = FirstSpiffeId(peer.get());
  }
  if (!id.ok()) return id.status();
  std::vector<std::string> peer_ids = UriSans(peer.get());
  const std::vector<identity::SpiffeId>& want_any = impl_->expected_identities;
  if (impl_->role == Role::kClient) {
    if (!want_any.empty()) {
      bool match = false;
      for (const std::string& uri : peer_ids) {
        for (const identity::SpiffeId& want : want_any) {
          if (uri == want.str()) match = true;
        }
      }
      if (!match) {
        return absl::PermissionDeniedError(absl::StrCat("server identity ", *id,
                                                        " is not one of the expected identities (",
                                                        JoinIds(want_any), ")"));
      }
    }
  } else if (verified == nullptr) {
    // ambient's server verifier enforces the trust domain itself; a host's
    // own verification does not, so check it here.
    X509* own = SSL_get_certificate(ssl);
    absl::StatusOr<std::string> own_id = FirstSpiffeId(own);
    if (!own_id.ok()) {
      return absl::FailedPreconditionError("our own certificate has no SPIFFE ID");
    }
    absl::string_view own_td = TrustDomainOf(*own_id);
    if (TrustDomainOf(*id) != own_td) {
      return absl::PermissionDeniedError(
          absl::StrCat("client identity ", *id, " is not in our trust domain ", own_td));
    }
  }
  if (verified != nullptr) return *verified;
  absl::StatusOr<identity::SpiffeId> parsed = identity::SpiffeId::Parse(*id);
  if (!parsed.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("peer's SPIFFE ID is not valid: ", parsed.status().message()));
  }
  return *std::move(parsed);
}

TlsSession::ReadResult TlsSession::Read(absl::Span<uint8_t> out) {
  ReadResult res;
  SSL* ssl = impl_->ssl.get();
  int n = SSL_read(ssl, out.data(), static_cast<int>(std::min<size_t>(out.size(), 1 << 30)));
  if (n > 0) {
    res.kind = ReadResult::Kind::kData;
    res.n = static_cast<size_t>(n);
    return res;
  }
  int err = SSL_get_error(ssl, n);
  if (err == SSL_ERROR_WANT_READ) {
    res.kind = ReadResult::Kind::kWantRead;
  } else if (err == SSL_ERROR_ZERO_RETURN) {
    res.kind = ReadResult::Kind::kClosed;  // close_notify: the peer sends nothing more
  } else {
    res.kind = ReadResult::Kind::kError;
    res.error = absl::DataLossError(absl::StrCat("TLS error from peer: ", LastError()));
  }
  return res;
}

bool TlsSession::Write(absl::Span<const uint8_t> plain) {
  if (plain.empty()) return true;
  int w = SSL_write(impl_->ssl.get(), plain.data(), static_cast<int>(plain.size()));
  return w > 0 && static_cast<size_t>(w) == plain.size();
}

void TlsSession::SendCloseNotify() {
  if (impl_->shutdown_sent || !SSL_is_init_finished(impl_->ssl.get())) return;
  impl_->shutdown_sent = true;
  SSL_shutdown(impl_->ssl.get());
}

}  // namespace ambient::hbone
