// istio.security.Authorization into the policy store:
// ambient/xds/authorization_handler.h.
#include "ambient/xds/authorization_handler.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "ambient/authz/policy_codec.h"

namespace ambient::xds {

std::vector<Rejection> AuthorizationHandler::Apply(const std::vector<ResourceUpdate>& updates,
                                                   const std::vector<std::string>& removed) {
  std::vector<Rejection> out;
  for (const ResourceUpdate& u : updates) {
    absl::StatusOr<authz::Policy> p = authz::DecodePolicyProto(u.value);
    if (!p.ok()) {
      out.emplace_back(u.name, std::string(p.status().message()));
      continue;
    }
    if (u.name != p->key()) {
      out.emplace_back(u.name, absl::StrCat("resource name must be the policy's "
                                            "\"namespace/name\" \"",
                                            p->key(), "\""));
      continue;
    }
    store_->Upsert(std::move(*p));
  }
  for (const std::string& name : removed) store_->Remove(name);
  return out;
}

}  // namespace ambient::xds
