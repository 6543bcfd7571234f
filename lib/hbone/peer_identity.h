// Reading SPIFFE IDs out of the certificates of a finished TLS handshake.
// Chain verification is not done here: it is the SSL_CTX's job (the identity
// layer's verifier or the host's). This only reads the URI SANs.
//
// Not the same as identity::PeerIdentity (the ID ambient's verifier already
// checked; tls_session.cc uses it first) or identity::LeafSpiffeId (exactly
// one URI SAN, full SPIFFE ID syntax, not null-safe). These functions serve
// chains a host's own SSL_CTX verified: they accept a null certificate, skip
// non-SPIFFE URI SANs, take the first of several, and check only the
// "spiffe://<trust domain>/" shape. Folding them into LeafSpiffeId would make
// such peers fail that pass today.
#ifndef AMBIENT_LIB_HBONE_PEER_IDENTITY_H_
#define AMBIENT_LIB_HBONE_PEER_IDENTITY_H_

#include "ambient/base/tls.h"

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ambient::hbone {

// UriSans returns every URI SAN of `cert` in certificate order.
std::vector<std::string> UriSans(X509* cert);

// FirstSpiffeId returns the first URI SAN that looks like a SPIFFE ID
// ("spiffe://" + non-empty trust domain + path), or Unauthenticated.
absl::StatusOr<std::string> FirstSpiffeId(X509* cert);

// TrustDomainOf returns the trust domain of a SPIFFE ID ("" if malformed).
absl::string_view TrustDomainOf(absl::string_view spiffe_id);

}  // namespace ambient::hbone

#endif  // AMBIENT_LIB_HBONE_PEER_IDENTITY_H_
