#include "ambient/hbone/tls_context.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "ambient/base/read_file.h"
#include "ambient/base/runtime_check.h"
#include "ambient/base/status.h"
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
  absl::StatusOr<bssl::UniquePtr<SSL_CTX>> ctx =
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

}  // namespace ambient::hbone
