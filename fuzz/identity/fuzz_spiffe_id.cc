// SPIFFE ID, trust-domain and Istio identity parsers on arbitrary bytes, with
// consistency checks: the allocation-free check agrees with the parser, a
// parsed ID formats back to its input, and the views agree with each other.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "ambient/identity/spiffe_id.h"

namespace id = ambient::identity;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<id::SpiffeId> parsed = id::SpiffeId::Parse(in);
  id::SpiffeIdError check = id::ValidateSpiffeId(in);
  if (parsed.ok() != (check == id::SpiffeIdError::kNone)) std::abort();
  if (parsed.ok()) {
    if (parsed->str() != in) std::abort();
    if (absl::StrCat("spiffe://", parsed->trust_domain_name(), parsed->path()) != in) std::abort();
    absl::StatusOr<id::SpiffeId> again = id::SpiffeId::FromParts(parsed->trust_domain(), parsed->path());
    if (!again.ok() || *again != *parsed) std::abort();
    absl::StatusOr<id::TrustDomain> td = id::TrustDomain::Parse(in);
    if (!td.ok() || td->name() != parsed->trust_domain_name()) std::abort();
    absl::StatusOr<id::IstioIdentity> istio = id::IstioIdentity::FromSpiffeId(*parsed);
    if (istio.ok() && istio->ToString() != in) std::abort();
  } else if (in.size() <= id::kMaxSpiffeIdLength + 10 && parsed.status().message().empty()) {
    std::abort();
  }
  (void)id::TrustDomain::Parse(in);
  absl::StatusOr<id::IstioIdentity> loose = id::IstioIdentity::Parse(in);
  if (loose.ok() && loose->ToString() != in) std::abort();
  return 0;
}
