// StaticCredentials (ambient/runtime/node_proxy.h): SVIDs known up front, by pod uid.
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ambient/runtime/node_proxy.h"

namespace ambient::runtime {

std::function<absl::StatusOr<std::shared_ptr<identity::CredentialHolder>>(const Workload&)>
StaticCredentials(std::map<std::string, std::shared_ptr<const identity::Credentials>> svids) {
  return [svids = std::move(svids)](
             const Workload& w) -> absl::StatusOr<std::shared_ptr<identity::CredentialHolder>> {
    auto it = svids.find(w.uid);
    if (it == svids.end()) return absl::NotFoundError(absl::StrCat("no SVID set for pod ", w.uid));
    return std::make_shared<identity::CredentialHolder>(it->second);
  };
}

}  // namespace ambient::runtime
