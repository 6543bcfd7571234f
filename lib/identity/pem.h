// Internal to lib/identity: reading PEM certificate lists, parsing DER, and
// error-queue hygiene. Portable across BoringSSL and OpenSSL 3.
#ifndef AMBIENT_LIB_IDENTITY_PEM_H_
#define AMBIENT_LIB_IDENTITY_PEM_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/base/tls.h"

namespace ambient::identity::internal {

// A certificate read from PEM: its DER and the parsed form.
struct PemCertificate {
  std::string der;
  tls::UniquePtr<X509> cert;
};

// ReadPemCertificates returns every PEM block of `pem`, which must all be
// CERTIFICATE blocks that parse as X.509. An input without any block gives an
// empty list. `what` names the input in error messages.
absl::StatusOr<std::vector<PemCertificate>> ReadPemCertificates(absl::string_view pem,
                                                                absl::string_view what);

// ParseCertificate parses one DER certificate; trailing bytes after it are an
// error. Errors: InvalidArgument naming `what`.
absl::StatusOr<tls::UniquePtr<X509>> ParseCertificate(absl::string_view der,
                                                      absl::string_view what);

// ClearErrors empties the TLS library's thread-local error queue so that
// nothing of ours is left for the host to find.
void ClearErrors();

}  // namespace ambient::identity::internal

#endif  // AMBIENT_LIB_IDENTITY_PEM_H_
