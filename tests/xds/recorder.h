// Test support for the xDS tests: a TypeHandler that keeps what it applies.
#ifndef AMBIENT_TESTS_XDS_RECORDER_H_
#define AMBIENT_TESTS_XDS_RECORDER_H_

#include <map>
#include <string>
#include <vector>

#include "ambient/xds/delta_ads.h"

namespace ambient::xds::testing {

// Recorder applies every update except those whose name is in `refuse` or
// whose value is "bad" (rejected with the reason given, or "cannot decode").
class Recorder : public TypeHandler {
 public:
  std::vector<Rejection> Apply(const std::vector<ResourceUpdate>& updates,
                               const std::vector<std::string>& removed) override {
    std::vector<Rejection> out;
    for (const ResourceUpdate& u : updates) {
      if (auto it = refuse.find(u.name); it != refuse.end()) {
        out.emplace_back(u.name, it->second);
      } else if (u.value == "bad") {
        out.emplace_back(u.name, "cannot decode");
      } else {
        held[u.name] = u.value;
      }
    }
    for (const std::string& r : removed) {
      held.erase(r);
      removals.push_back(r);
    }
    ++calls;
    return out;
  }
  std::map<std::string, std::string> held;
  std::map<std::string, std::string> refuse;
  std::vector<std::string> removals;
  int calls = 0;
};

}  // namespace ambient::xds::testing

#endif  // AMBIENT_TESTS_XDS_RECORDER_H_
