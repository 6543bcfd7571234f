// Internal to lib/identity: SPIFFE bundle JSON and bundle-map JSON, read with
// nlohmann-json (Debian's nlohmann-json3-dev, header-only, used privately: no
// nlohmann type appears in a public header). Nothing here parses JSON by hand;
// this file only walks the parsed document.
#ifndef AMBIENT_LIB_IDENTITY_BUNDLE_JSON_H_
#define AMBIENT_LIB_IDENTITY_BUNDLE_JSON_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ambient::identity::internal {

struct ParsedBundle {
  std::optional<uint64_t> sequence;
  std::optional<int64_t> refresh_hint;
  // DER of the first x5c certificate of every x509-svid key, in order.
  std::vector<std::string> x509_authorities;
};

// ParseBundleJson reads one SPIFFE bundle (JWK Set). Errors are
// InvalidArgument and start with "bundle JSON".
absl::StatusOr<ParsedBundle> ParseBundleJson(absl::string_view json);

// ParseBundleMapJson reads {"trust_domains": {...}}: pairs of (name, bundle)
// in key order. A duplicated trust-domain name is rejected with AlreadyExists,
// any other duplicated member with InvalidArgument.
absl::StatusOr<std::vector<std::pair<std::string, ParsedBundle>>> ParseBundleMapJson(
    absl::string_view json);

}  // namespace ambient::identity::internal

#endif  // AMBIENT_LIB_IDENTITY_BUNDLE_JSON_H_
