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

#include "absl/status/statusor.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/trust_bundle.h"

namespace ambient::hbone {

// NewServerContext: errors InvalidArgument (null holder/bundles, holder
// empty), FailedPrecondition (TLS library is not BoringSSL).
absl::StatusOr<bssl::UniquePtr<SSL_CTX>> NewServerContext(
    std::shared_ptr<identity::CredentialHolder> credentials,
    std::shared_ptr<identity::TrustBundleSource> bundles);

// NewClientContext: same errors.
absl::StatusOr<bssl::UniquePtr<SSL_CTX>> NewClientContext(
    std::shared_ptr<identity::CredentialHolder> credentials,
    std::shared_ptr<identity::TrustBundleSource> bundles);

}  // namespace ambient::hbone

#endif  // AMBIENT_HBONE_TLS_CONTEXT_H_
