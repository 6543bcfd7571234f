#include "ambient/hbone/tls_context.h"

#include "ambient/base/runtime_check.h"
#include "ambient/hbone/connection.h"
#include "ambient/identity/svid_verifier.h"
#include "ambient/identity/tls.h"

namespace ambient::hbone {

namespace {

absl::StatusOr<bssl::UniquePtr<SSL_CTX>> NewContext(
    const std::shared_ptr<identity::CredentialHolder>& credentials,
    const std::shared_ptr<identity::TrustBundleSource>& bundles) {
  if (absl::Status s = EnsureBoringSsl(); !s.ok()) return s;
  if (credentials == nullptr || bundles == nullptr) {
    return absl::InvalidArgumentError("credentials and trust bundles are required");
  }
  if (credentials->Get() == nullptr) {
    return absl::InvalidArgumentError("the credential holder has no credentials yet");
  }
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx) return absl::ResourceExhaustedError("SSL_CTX_new failed");
  if (absl::Status s = identity::InstallCredentials(ctx.get(), credentials); !s.ok()) return s;
  return ctx;
}

}  // namespace

absl::StatusOr<bssl::UniquePtr<SSL_CTX>> NewServerContext(
    std::shared_ptr<identity::CredentialHolder> credentials,
    std::shared_ptr<identity::TrustBundleSource> bundles) {
  absl::StatusOr<bssl::UniquePtr<SSL_CTX>> ctx = NewContext(credentials, bundles);
  if (!ctx.ok()) return ctx.status();
  identity::TrustDomain ours = credentials->Get()->id().trust_domain();
  if (absl::Status s = identity::InstallServerVerifier(ctx->get(), bundles, ours); !s.ok()) {
    return s;
  }
  if (absl::Status s = PrepareServerContext(ctx->get()); !s.ok()) return s;
  return ctx;
}

absl::StatusOr<bssl::UniquePtr<SSL_CTX>> NewClientContext(
    std::shared_ptr<identity::CredentialHolder> credentials,
    std::shared_ptr<identity::TrustBundleSource> bundles) {
  absl::StatusOr<bssl::UniquePtr<SSL_CTX>> ctx = NewContext(credentials, bundles);
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

}  // namespace ambient::hbone
