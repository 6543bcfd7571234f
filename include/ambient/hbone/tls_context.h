// ambient/hbone/tls_context.h: SSL_CTXs for HBONE built from ambient's
// identity layer.
//
// A host with its own TLS setup can prepare any SSL_CTX with
// PrepareClientContext / PrepareServerContext (connection.h). These
// functions do the whole job from SPIFFE credentials and trust bundles:
// ECDSA/RSA credentials from a CredentialHolder (rotation applies to new
// handshakes), the HBONE TLS policy (TLS 1.3, ALPN h2, no resumption), and
// ambient's SPIFFE verifier: the server accepts clients of its own trust
// domain (ztunnel's inbound rule); the client context verifies any SVID of a
// known trust domain, and each client Connection narrows that to its
// expected identities (ConnectionOptions::bundles).
//
// Threads: the contexts may be shared by connections on any threads.
#ifndef AMBIENT_HBONE_TLS_CONTEXT_H_
#define AMBIENT_HBONE_TLS_CONTEXT_H_

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/base/tls.h"
#include "ambient/hbone/connection.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/trust_bundle.h"

namespace ambient::hbone {

// NewServerContext: errors InvalidArgument (null holder/bundles, holder
// empty), FailedPrecondition (TLS library is not the one ambient was built with).
absl::StatusOr<tls::UniquePtr<SSL_CTX>> NewServerContext(
    std::shared_ptr<identity::CredentialHolder> credentials,
    std::shared_ptr<identity::TrustBundleSource> bundles);

// NewClientContext: same errors.
absl::StatusOr<tls::UniquePtr<SSL_CTX>> NewClientContext(
    std::shared_ptr<identity::CredentialHolder> credentials,
    std::shared_ptr<identity::TrustBundleSource> bundles);

// PemTlsContext is a context built from PEM text by NewContextFromPem: the
// SSL_CTX, the trust bundles it verifies with (client Connections narrow them
// per tunnel through ConnectionOptions::bundles) and the credentials it
// presents (credentials->id() is its SPIFFE ID).
struct PemTlsContext {
  tls::UniquePtr<SSL_CTX> ctx;
  std::shared_ptr<identity::TrustBundleSource> bundles;
  std::shared_ptr<const identity::Credentials> credentials;
};

// NewContextFromPem builds a `role` context (NewServerContext or
// NewClientContext) from an SVID certificate chain and its private key (PEM)
// and the trust bundle of the SVID's trust domain, given either as PEM
// certificates or as a SPIFFE bundle JSON document (text whose first
// non-blank byte is '{'). The credentials are fixed: no rotation. Errors:
// InvalidArgument "credentials...: ..." (bad chain or key) or
// "trust bundle: ..." (bad bundle), plus NewServerContext's.
absl::StatusOr<PemTlsContext> NewContextFromPem(Role role, absl::string_view cert_chain_pem,
                                                absl::string_view key_pem,
                                                absl::string_view bundle);

// NewContextFromFiles is NewContextFromPem on the contents of three files,
// each read with ReadFileBounded (kMaxFileSize) and named "certificate",
// "key" and "bundle" in its errors (NotFound, PermissionDenied,
// InvalidArgument for too large or a directory, Unavailable). It blocks
// while reading.
absl::StatusOr<PemTlsContext> NewContextFromFiles(Role role, const std::string& cert_chain_path,
                                                  const std::string& key_path,
                                                  const std::string& bundle_path);

}  // namespace ambient::hbone

#endif  // AMBIENT_HBONE_TLS_CONTEXT_H_
