// Internal to lib/identity: what differs between the TLS libraries. One
// implementation per library, tls_boringssl.cc or tls_openssl.cc, is built
// (CMake's AMBIENT_TLS); the rest of the layer calls only these and the API
// the two libraries share.
#ifndef AMBIENT_LIB_IDENTITY_TLS_BACKEND_H_
#define AMBIENT_LIB_IDENTITY_TLS_BACKEND_H_

#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "ambient/base/tls.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/spiffe_id.h"
#include "ambient/identity/svid_verifier.h"
#include "identity/pem.h"

namespace ambient::identity::internal {

// MakeNativeChain keeps `chain` (leaf first) in the form the handshake takes.
absl::StatusOr<std::shared_ptr<const NativeChain>> MakeNativeChain(
    const std::vector<PemCertificate>& chain);

// UseChainAndKey makes `ssl` present `creds` (from a certificate callback).
bool UseChainAndKey(SSL* ssl, const Credentials& creds);

// IsP256 says whether an EC key is on the P-256 curve.
bool IsP256(EVP_PKEY* key);

// The peer-verification hook. The backend's callback calls VerifyPeer with a
// function that runs a verifier over the peer's chain in the library's own
// form; VerifyPeer picks the SSL's verifier (else its SSL_CTX's), records the
// result for PeerIdentity/VerifyFailure and returns it.
using ChainCheck = absl::FunctionRef<absl::StatusOr<SpiffeId>(const SvidVerifier&)>;
absl::Status VerifyPeer(SSL* ssl, ChainCheck check);
// HasVerifier says whether ambient verifies `ssl`'s peer (its own verifier or
// its SSL_CTX's).
bool HasVerifier(const SSL* ssl);
// AlertFor is the TLS alert for a verification failure.
uint8_t AlertFor(const absl::Status& failure);

// SetVerifyHook turns on peer verification (`mode`: SSL_VERIFY_* flags) with
// the backend's callback, which calls VerifyPeer.
void SetVerifyHook(SSL_CTX* ctx, int mode);
void SetVerifyHook(SSL* ssl, int mode);

}  // namespace ambient::identity::internal

#endif  // AMBIENT_LIB_IDENTITY_TLS_BACKEND_H_
