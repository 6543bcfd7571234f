#include "ambient/hbone/tls_context.h"

#include <openssl/ssl.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "ambient/base/read_file.h"
#include "ambient/base/runtime_check.h"
#include "ambient/base/status.h"
#include "ambient/base/tls.h"
#include "ambient/hbone/connection.h"
#include "ambient/identity/svid_verifier.h"
#include "ambient/identity/tls.h"
#include "hbone/tls_backend.h"

namespace ambient::hbone {

namespace {

absl::StatusOr<tls::UniquePtr<SSL_CTX>> NewContext(
    const std::shared_ptr<identity::CredentialHolder>& credentials,
    const std::shared_ptr<identity::TrustBundleSource>& bundles) {
  if (absl::Status s = EnsureTlsBackend(); !s.ok()) return s;
  if (credentials == nullptr || bundles == nullptr) {
    return absl::InvalidArgumentError("credentials and trust bundles are required");
  }
  if (credentials->Get() == nullptr) {
    return absl::InvalidArgumentError("the credential holder has no credentials yet");
  }
  tls::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx) return absl::ResourceExhaustedError("SSL_CTX_new failed");
  if (absl::Status s = identity::InstallCredentials(ctx.get(), credentials); !s.ok()) return s;
  return ctx;
}

}  // namespace

absl::StatusOr<tls::UniquePtr<SSL_CTX>> NewServerContext(
    std::shared_ptr<identity::CredentialHolder> credentials,
    std::shared_ptr<identity::TrustBundleSource> bundles) {
  absl::StatusOr<tls::UniquePtr<SSL_CTX>> ctx = NewContext(credentials, bundles);
  if (!ctx.ok()) return ctx.status();
  identity::TrustDomain ours = credentials->Get()->id().trust_domain();
  if (absl::Status s = identity::InstallServerVerifier(ctx->get(), bundles, ours); !s.ok()) {
    return s;
  }
  if (absl::Status s = PrepareServerContext(ctx->get()); !s.ok()) return s;
  return ctx;
}

absl::StatusOr<tls::UniquePtr<SSL_CTX>> NewClientContext(
    std::shared_ptr<identity::CredentialHolder> credentials,
    std::shared_ptr<identity::TrustBundleSource> bundles) {
  absl::StatusOr<tls::UniquePtr<SSL_CTX>> ctx = NewContext(credentials, bundles);
  if (!ctx.ok()) return ctx.status();
  absl::StatusOr<std::shared_ptr<const identity::SvidVerifier>> verifier =
      identity::SvidVerifier::Create(bundles, identity::VerifyPolicy::AnyTrustDomain());
  if (!verifier.ok()) return verifier.status();
  if (absl::Status s = identity::InstallVerifier(ctx->get(), *std::move(verifier)); !s.ok()) {
    return s;
  }
  if (absl::Status s = PrepareClientContext(ctx->get()); !s.ok()) return s;
  return ctx;
}

absl::StatusOr<PemTlsContext> NewContextFromPem(Role role, absl::string_view cert_chain_pem,
                                                absl::string_view key_pem,
                                                absl::string_view bundle) {
  absl::StatusOr<std::shared_ptr<const identity::Credentials>> creds =
      identity::Credentials::FromPem(cert_chain_pem, key_pem);
  if (!creds.ok()) {  // the identity layer's messages mostly name "credentials" already
    return absl::StartsWith(creds.status().message(), "credentials")
               ? creds.status()
               : Prefixed("credentials", creds.status());
  }
  identity::TrustDomain td = (*creds)->id().trust_domain();
  absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(bundle);
  absl::StatusOr<std::shared_ptr<const identity::TrustBundle>> parsed =
      !trimmed.empty() && trimmed.front() == '{' ? identity::TrustBundle::FromSpiffeJson(td, bundle)
                                                 : identity::TrustBundle::FromPem(td, bundle);
  if (!parsed.ok()) return Prefixed("trust bundle", parsed.status());
  absl::StatusOr<std::shared_ptr<const identity::TrustBundleSet>> set =
      identity::TrustBundleSet::Create({*parsed});
  if (!set.ok()) return set.status();
  auto source = std::make_shared<identity::TrustBundleSource>(*set);
  auto holder = std::make_shared<identity::CredentialHolder>(*creds);
  absl::StatusOr<tls::UniquePtr<SSL_CTX>> ctx =
      role == Role::kServer ? NewServerContext(holder, source) : NewClientContext(holder, source);
  if (!ctx.ok()) return ctx.status();
  PemTlsContext out;
  out.ctx = *std::move(ctx);
  out.bundles = std::move(source);
  out.credentials = *std::move(creds);
  return out;
}

absl::StatusOr<PemTlsContext> NewContextFromFiles(Role role, const std::string& cert_chain_path,
                                                  const std::string& key_path,
                                                  const std::string& bundle_path) {
  absl::StatusOr<std::string> cert = ReadFileBounded(cert_chain_path, kMaxFileSize, "certificate");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFileBounded(key_path, kMaxFileSize, "key");
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> bundle = ReadFileBounded(bundle_path, kMaxFileSize, "bundle");
  if (!bundle.ok()) return bundle.status();
  return NewContextFromPem(role, *cert, *key, *bundle);
}

// ---------------------------------------------------------------------------
// Context preparation (PrepareClientContext / PrepareServerContext of
// ambient/hbone/connection.h): the HBONE TLS policy on a host's SSL_CTX.

namespace {

constexpr uint8_t kAlpnH2[] = {2, 'h', '2'};

int SelectH2(SSL*, const uint8_t** out, uint8_t* out_len, const uint8_t* in, unsigned in_len,
             void*) {
  const uint8_t* p = in;
  const uint8_t* end = in + in_len;
  while (p < end) {
    uint8_t len = *p++;
    if (len > end - p) break;
    if (len == 2 && p[0] == 'h' && p[1] == '2') {
      *out = p;
      *out_len = len;
      return SSL_TLSEXT_ERR_OK;
    }
    p += len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

absl::Status PrepareCommon(SSL_CTX* ctx) {
  if (absl::Status s = EnsureTlsBackend(); !s.ok()) return s;
  if (ctx == nullptr) return absl::InvalidArgumentError("ssl_ctx must not be NULL");
  if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
      !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
    return absl::InternalError("cannot restrict TLS to 1.3");
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  return internal::RestrictContext(ctx);
}

}  // namespace

absl::Status PrepareClientContext(ssl_ctx_st* ctx) {
  if (absl::Status s = PrepareCommon(ctx); !s.ok()) return s;
  if (SSL_CTX_set_alpn_protos(ctx, kAlpnH2, sizeof(kAlpnH2)) != 0) {
    return absl::ResourceExhaustedError("cannot set ALPN");
  }
  return absl::OkStatus();
}

absl::Status PrepareServerContext(ssl_ctx_st* ctx) {
  if (absl::Status s = PrepareCommon(ctx); !s.ok()) return s;
  SSL_CTX_set_alpn_select_cb(ctx, &SelectH2, nullptr);
  int mode = SSL_CTX_get_verify_mode(ctx);
  if ((mode & SSL_VERIFY_PEER) != 0) {
    SSL_CTX_set_verify(ctx, mode | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, SSL_CTX_get_verify_callback(ctx));
  }
  return absl::OkStatus();
}


}  // namespace ambient::hbone
