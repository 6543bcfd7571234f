#include "hbone/peer_identity.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/strings/match.h"

namespace ambient::hbone {

namespace {
constexpr absl::string_view kScheme = "spiffe://";
}

std::vector<std::string> UriSans(X509* cert) {
  std::vector<std::string> out;
  if (cert == nullptr) return out;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  const size_t count = static_cast<size_t>(sk_GENERAL_NAME_num(names));
  for (size_t i = 0; i < count; ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                     static_cast<size_t>(ASN1_STRING_length(uri)));
  }
  GENERAL_NAMES_free(names);
  return out;
}

absl::string_view TrustDomainOf(absl::string_view id) {
  if (!absl::StartsWith(id, kScheme)) return {};
  id.remove_prefix(kScheme.size());
  size_t slash = id.find('/');
  if (slash == absl::string_view::npos || slash == 0) return {};
  return id.substr(0, slash);
}

absl::StatusOr<std::string> FirstSpiffeId(X509* cert) {
  for (std::string& uri : UriSans(cert)) {
    if (!TrustDomainOf(uri).empty()) return std::move(uri);
  }
  return absl::UnauthenticatedError("peer certificate has no SPIFFE ID (URI SAN)");
}

}  // namespace ambient::hbone
