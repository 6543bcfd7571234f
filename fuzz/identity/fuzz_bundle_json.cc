// SPIFFE trust bundle JSON and bundle-map JSON readers on arbitrary bytes:
// whatever is accepted must be usable (authorities parse, names are valid).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "ambient/identity/trust_bundle.h"

namespace id = ambient::identity;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  static const id::TrustDomain* const td = new id::TrustDomain(*id::TrustDomain::Parse("example.org"));
  auto bundle = id::TrustBundle::FromSpiffeJson(*td, in);
  if (bundle.ok()) {
    for (const auto& cert : (*bundle)->authorities()) {
      if (cert == nullptr) std::abort();
    }
    if ((*bundle)->store() == nullptr) std::abort();
  }
  auto set = id::TrustBundleSet::FromSpiffeBundleMapJson(in);
  if (set.ok()) {
    for (const auto& [name, b] : (*set)->bundles()) {
      if (!id::TrustDomain::Parse(name).ok() || b->trust_domain().name() != name) std::abort();
    }
  }
  return 0;
}
