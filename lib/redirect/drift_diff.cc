#include "redirect/drift_diff.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"

namespace ambient::redirect {

std::string Drift::ToString() const {
  const char* kind = this->kind == Kind::kMissing ? "missing"
                     : this->kind == Kind::kExtra ? "extra"
                                                  : "modified";
  return absl::StrCat(kind, ": ", where, ": ", detail);
}

namespace internal {

void DiffRules(const std::string& where, const std::vector<std::string>& want,
               const std::vector<std::string>& have, std::vector<Drift>* out) {
  if (want == have) return;
  if (want.size() == have.size()) {
    std::vector<std::string> a = want, b = have;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a == b) {
      out->push_back({Drift::Kind::kModified, where, "rules are in another order"});
      return;
    }
    for (size_t i = 0; i < want.size(); ++i) {
      if (want[i] != have[i]) {
        out->push_back({Drift::Kind::kModified, where,
                        absl::StrCat("rule ", i + 1, " is '", have[i], "', expected '", want[i], "'")});
      }
    }
    return;
  }
  std::map<std::string, int> count;
  for (const std::string& r : have) count[r]++;
  for (const std::string& r : want) {
    if (count[r] > 0) {
      count[r]--;
    } else {
      out->push_back({Drift::Kind::kMissing, where, r});
    }
  }
  for (const std::string& r : have) {
    if (count[r] > 0) {
      count[r]--;
      out->push_back({Drift::Kind::kExtra, where, r});
    }
  }
}

}  // namespace internal
}  // namespace ambient::redirect
