// ambient/identity/tls.h: plugging SPIFFE into any SSL_CTX of ambient's TLS library.
//
// Object model. These functions attach ambient objects to a host's own
// SSL_CTX or SSL through the TLS library's ex_data; the SSL_CTX/SSL keeps a
// reference (std::shared_ptr) and drops it when it is freed, so the host
// needs to keep nothing alive itself.
//
//  - InstallVerifier (SSL_CTX or one SSL) turns on peer verification
//    (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, so a server requires
//    a client certificate) with the library's verification hook (BoringSSL's
//    custom verify; OpenSSL's SSL_CTX certificate-verify callback, which for a
//    per-SSL verifier is set on the SSL's SSL_CTX too, its other connections
//    keeping OpenSSL's own verification): the SvidVerifier
//    checks the peer's chain. A verifier set on an SSL overrides the
//    SSL_CTX's for that connection (e.g. per-destination expected IDs).
//  - InstallCredentials makes every handshake of the SSL_CTX present the
//    holder's current chain and key (a certificate callback picks them once
//    per handshake): rotating the holder changes new handshakes only.
//  - PeerIdentity gives the verified peer SPIFFE ID of a connection;
//    VerifyFailure says why verification failed.
//
// Session resumption: a resumed session runs no verification and has no
// PeerIdentity; hosts that need identities on every connection should not
// resume sessions (ambient never enables it on their behalf).
//
// Threads: install before the SSL_CTX/SSL is used for handshakes (like any
// SSL_CTX configuration). The callbacks run on whichever thread drives the
// handshake; PeerIdentity and VerifyFailure are for the thread owning the SSL.
#ifndef AMBIENT_IDENTITY_TLS_H_
#define AMBIENT_IDENTITY_TLS_H_

#include <openssl/ssl.h>

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/spiffe_id.h"
#include "ambient/identity/svid_verifier.h"
#include "ambient/identity/trust_bundle.h"

namespace ambient::identity {

// InstallVerifier makes `ctx` verify every peer with `verifier` (replacing a
// verifier installed before). Errors: InvalidArgument for null arguments.
absl::Status InstallVerifier(SSL_CTX* ctx, std::shared_ptr<const SvidVerifier> verifier);
// InstallVerifier for a single connection, overriding its SSL_CTX's.
absl::Status InstallVerifier(SSL* ssl, std::shared_ptr<const SvidVerifier> verifier);

// InstallClientVerifier is InstallVerifier with ztunnel's client preset: the
// server must present one of `expected` (non-empty). Errors: InvalidArgument.
absl::Status InstallClientVerifier(SSL_CTX* ctx, std::shared_ptr<TrustBundleSource> bundles,
                                   std::vector<SpiffeId> expected, UnixClock clock = {});
absl::Status InstallClientVerifier(SSL* ssl, std::shared_ptr<TrustBundleSource> bundles,
                                   std::vector<SpiffeId> expected, UnixClock clock = {});
// InstallServerVerifier is InstallVerifier with ztunnel's server preset: the
// client must be in trust domain `ours`.
absl::Status InstallServerVerifier(SSL_CTX* ctx, std::shared_ptr<TrustBundleSource> bundles,
                                   TrustDomain ours, UnixClock clock = {});

// InstallCredentials makes `ctx` present `holder`'s current credentials on
// every handshake (server certificate, or client certificate when asked).
// A handshake fails if the holder is empty. Errors: InvalidArgument.
absl::Status InstallCredentials(SSL_CTX* ctx, std::shared_ptr<CredentialHolder> holder);

// PeerIdentity lends the verified SPIFFE ID of `ssl`'s peer, or nullptr when
// no verification by ambient succeeded on this connection. Valid as long as
// `ssl` lives.
const SpiffeId* PeerIdentity(const SSL* ssl);

// VerifyFailure returns why ambient's verification of `ssl`'s peer failed
// (with an SvidError detail), or OK when it did not fail (or did not run).
absl::Status VerifyFailure(const SSL* ssl);

}  // namespace ambient::identity

#endif  // AMBIENT_IDENTITY_TLS_H_
