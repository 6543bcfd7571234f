// Test helpers for the C ABI node proxy tests: a log sink that keeps the
// lines it gets (ambient_log_fn), and an error's code with the error freed.
#ifndef AMBIENT_TESTS_E2E_CAPI_LOG_H_
#define AMBIENT_TESTS_E2E_CAPI_LOG_H_

#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "ambient/ambient.h"

namespace ambient::e2e {

// Code returns `err`'s code and frees it.
inline ambient_code Code(ambient_error* err) {
  ambient_code c = ambient_error_code(err);
  ambient_error_free(err);
  return c;
}

// Log collects "component message" lines; Fn is the C log callback (its
// user pointer is the Log).
class Log {
 public:
  static void Fn(void* user, ambient_log_level, const char* component, const char* msg,
                 size_t len) {
    auto* self = static_cast<Log*>(user);
    std::lock_guard<std::mutex> lock(self->mu_);
    self->lines_.push_back(absl::StrCat(component, " ", absl::string_view(msg, len)));
  }
  // Find returns the first line holding every one of `parts`, or "".
  std::string Find(const std::vector<std::string>& parts) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& l : lines_) {
      bool all = true;
      for (const std::string& p : parts) all = all && absl::StrContains(l, p);
      if (all) return l;
    }
    return "";
  }
  std::string All() {
    std::lock_guard<std::mutex> lock(mu_);
    return absl::StrJoin(lines_, "\n");
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

}  // namespace ambient::e2e

#endif  // AMBIENT_TESTS_E2E_CAPI_LOG_H_
