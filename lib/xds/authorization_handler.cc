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
  std::vector<authz::Policy> good;
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
    good.push_back(std::move(*p));
  }
  store_->Apply(std::move(good), removed);  // one snapshot for the whole push
  return out;
}

}  // namespace ambient::xds
