// Internal to lib/identity: reading PEM certificate lists and BoringSSL error
// hygiene.
#ifndef AMBIENT_LIB_IDENTITY_PEM_H_
#define AMBIENT_LIB_IDENTITY_PEM_H_

#include <openssl/pool.h>
#include <openssl/x509.h>

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ambient::identity::internal {

// ReadPemCertificates returns the DER of every PEM block of `pem`, which must
// all be CERTIFICATE blocks that parse as X.509. An input without any block
// gives an empty list. `what` names the input in error messages.
absl::StatusOr<std::vector<bssl::UniquePtr<CRYPTO_BUFFER>>> ReadPemCertificates(
    absl::string_view pem, absl::string_view what);

// ParseCertificate parses DER in `buf`. Errors: InvalidArgument.
absl::StatusOr<bssl::UniquePtr<X509>> ParseCertificate(CRYPTO_BUFFER* buf, absl::string_view what);

// NewBuffer copies `der` into a CRYPTO_BUFFER (never null; aborts only on
// allocation failure, reported as ResourceExhausted).
absl::StatusOr<bssl::UniquePtr<CRYPTO_BUFFER>> NewBuffer(absl::string_view der);

// ClearErrors empties BoringSSL's thread-local error queue so that nothing
// of ours is left for the host to find.
void ClearErrors();

}  // namespace ambient::identity::internal

#endif  // AMBIENT_LIB_IDENTITY_PEM_H_
