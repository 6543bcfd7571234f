// The SPIFFE verifier and rotating credentials on any SSL_CTX / SSL, through
// the backend's verification hook (tls_backend.h), a certificate callback and
// ex_data.
#include "ambient/identity/tls.h"

#include <openssl/err.h>

#include <optional>

#include "ambient/base/status.h"
#include "identity/tls_backend.h"

namespace ambient::identity {
namespace {

// What ambient keeps on an SSL_CTX.
struct CtxState {
  std::shared_ptr<const SvidVerifier> verifier;
  std::shared_ptr<CredentialHolder> credentials;
};

// What ambient keeps on an SSL.
struct ConnState {
  std::shared_ptr<const SvidVerifier> verifier;  // per-connection override
  std::optional<SpiffeId> peer;
  absl::Status failure;
};

void FreeCtxState(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<CtxState*>(ptr);
}
void FreeConnState(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<ConnState*>(ptr);
}

int CtxIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeCtxState);
  return index;
}
int ConnIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeConnState);
  return index;
}

CtxState* GetCtxState(const SSL_CTX* ctx) {
  return static_cast<CtxState*>(SSL_CTX_get_ex_data(ctx, CtxIndex()));
}
ConnState* GetConnState(const SSL* ssl) {
  return static_cast<ConnState*>(SSL_get_ex_data(ssl, ConnIndex()));
}

absl::StatusOr<CtxState*> EnsureCtxState(SSL_CTX* ctx) {
  if (CtxIndex() < 0) return absl::ResourceExhaustedError("no SSL_CTX ex_data index");
  CtxState* st = GetCtxState(ctx);
  if (st != nullptr) return st;
  st = new CtxState;
  if (!SSL_CTX_set_ex_data(ctx, CtxIndex(), st)) {
    delete st;
    ERR_clear_error();
    return absl::ResourceExhaustedError("cannot attach state to SSL_CTX");
  }
  return st;
}

absl::StatusOr<ConnState*> EnsureConnState(SSL* ssl) {
  if (ConnIndex() < 0) return absl::ResourceExhaustedError("no SSL ex_data index");
  ConnState* st = GetConnState(ssl);
  if (st != nullptr) return st;
  st = new ConnState;
  if (!SSL_set_ex_data(ssl, ConnIndex(), st)) {
    delete st;
    ERR_clear_error();
    return absl::ResourceExhaustedError("cannot attach state to SSL");
  }
  return st;
}

int CertCallback(SSL* ssl, void* arg) {
  try {
    auto* holder = static_cast<CredentialHolder*>(arg);
    std::shared_ptr<const Credentials> creds = holder->Get();
    if (creds == nullptr) return 0;
    return internal::UseChainAndKey(ssl, *creds) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

constexpr int kVerifyMode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;

}  // namespace

namespace internal {

uint8_t AlertFor(const absl::Status& s) {
  switch (static_cast<SvidError>(DetailOf(s))) {
    case SvidError::kExpired:
    case SvidError::kNotYetValid:
      return SSL_AD_CERTIFICATE_EXPIRED;
    case SvidError::kUntrusted:
    case SvidError::kNoBundle:
      return SSL_AD_UNKNOWN_CA;
    case SvidError::kUnexpectedIdentity:
    case SvidError::kTrustDomainNotAllowed:
      return SSL_AD_ACCESS_DENIED;
    case SvidError::kBadSignature:
      return SSL_AD_DECRYPT_ERROR;
    default:
      return SSL_AD_BAD_CERTIFICATE;
  }
}

// FindVerifier is the verifier for `ssl`'s peer: its own, else its
// SSL_CTX's, else null.
const SvidVerifier* FindVerifier(const SSL* ssl) {
  const ConnState* st = GetConnState(ssl);
  if (st != nullptr && st->verifier != nullptr) return st->verifier.get();
  const CtxState* cs = GetCtxState(SSL_get_SSL_CTX(ssl));
  return cs != nullptr ? cs->verifier.get() : nullptr;
}

bool HasVerifier(const SSL* ssl) { return FindVerifier(ssl) != nullptr; }

absl::Status VerifyPeer(SSL* ssl, ChainCheck check) {
  absl::StatusOr<ConnState*> conn = EnsureConnState(ssl);
  if (!conn.ok()) return conn.status();
  ConnState* st = *conn;
  st->peer.reset();
  const SvidVerifier* verifier = FindVerifier(ssl);
  if (verifier == nullptr) {
    st->failure = absl::FailedPreconditionError("no ambient verifier installed");
    return st->failure;
  }
  absl::StatusOr<SpiffeId> id = check(*verifier);
  if (!id.ok()) {
    st->failure = id.status();
    return st->failure;
  }
  st->failure = absl::OkStatus();
  st->peer = *std::move(id);
  return absl::OkStatus();
}

}  // namespace internal

absl::Status InstallVerifier(SSL_CTX* ctx, std::shared_ptr<const SvidVerifier> verifier) {
  if (ctx == nullptr || verifier == nullptr) {
    return absl::InvalidArgumentError("InstallVerifier: null SSL_CTX or verifier");
  }
  absl::StatusOr<CtxState*> st = EnsureCtxState(ctx);
  if (!st.ok()) return st.status();
  (*st)->verifier = std::move(verifier);
  internal::SetVerifyHook(ctx, kVerifyMode);
  return absl::OkStatus();
}

absl::Status InstallVerifier(SSL* ssl, std::shared_ptr<const SvidVerifier> verifier) {
  if (ssl == nullptr || verifier == nullptr) {
    return absl::InvalidArgumentError("InstallVerifier: null SSL or verifier");
  }
  absl::StatusOr<ConnState*> st = EnsureConnState(ssl);
  if (!st.ok()) return st.status();
  (*st)->verifier = std::move(verifier);
  internal::SetVerifyHook(ssl, kVerifyMode);
  return absl::OkStatus();
}

absl::Status InstallClientVerifier(SSL_CTX* ctx, std::shared_ptr<TrustBundleSource> bundles,
                                   std::vector<SpiffeId> expected, UnixClock clock) {
  if (expected.empty()) return absl::InvalidArgumentError("client verifier: no expected identity");
  auto v = SvidVerifier::Create(std::move(bundles), VerifyPolicy::ExpectIdentities(std::move(expected)),
                                std::move(clock));
  if (!v.ok()) return v.status();
  return InstallVerifier(ctx, *std::move(v));
}

absl::Status InstallClientVerifier(SSL* ssl, std::shared_ptr<TrustBundleSource> bundles,
                                   std::vector<SpiffeId> expected, UnixClock clock) {
  if (expected.empty()) return absl::InvalidArgumentError("client verifier: no expected identity");
  auto v = SvidVerifier::Create(std::move(bundles), VerifyPolicy::ExpectIdentities(std::move(expected)),
                                std::move(clock));
  if (!v.ok()) return v.status();
  return InstallVerifier(ssl, *std::move(v));
}

absl::Status InstallServerVerifier(SSL_CTX* ctx, std::shared_ptr<TrustBundleSource> bundles,
                                   TrustDomain ours, UnixClock clock) {
  auto v = SvidVerifier::Create(std::move(bundles), VerifyPolicy::SameTrustDomain(std::move(ours)),
                                std::move(clock));
  if (!v.ok()) return v.status();
  return InstallVerifier(ctx, *std::move(v));
}

absl::Status InstallCredentials(SSL_CTX* ctx, std::shared_ptr<CredentialHolder> holder) {
  if (ctx == nullptr || holder == nullptr) {
    return absl::InvalidArgumentError("InstallCredentials: null SSL_CTX or holder");
  }
  absl::StatusOr<CtxState*> st = EnsureCtxState(ctx);
  if (!st.ok()) return st.status();
  (*st)->credentials = std::move(holder);
  SSL_CTX_set_cert_cb(ctx, CertCallback, (*st)->credentials.get());
  return absl::OkStatus();
}

const SpiffeId* PeerIdentity(const SSL* ssl) {
  if (ssl == nullptr) return nullptr;
  const ConnState* st = GetConnState(ssl);
  if (st == nullptr || !st->peer.has_value()) return nullptr;
  return &*st->peer;
}

absl::Status VerifyFailure(const SSL* ssl) {
  if (ssl == nullptr) return absl::OkStatus();
  const ConnState* st = GetConnState(ssl);
  return st == nullptr ? absl::OkStatus() : st->failure;
}

}  // namespace ambient::identity
