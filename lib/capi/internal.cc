// The helpers lib/capi/internal.h declares for every shim file.
#include "capi/internal.h"

#include <cstring>

namespace ambient::capi {

size_t CopyToBuffer(absl::string_view text, char* buf, size_t cap) noexcept {
  if (buf != nullptr && cap > 0) {
    size_t n = text.size() < cap - 1 ? text.size() : cap - 1;
    if (n > 0) std::memcpy(buf, text.data(), n);
    buf[n] = '\0';
  }
  return text.size();
}

absl::Status CopyStrings(const char* const* in, size_t n, const char* array, const char* element,
                         std::vector<std::string>* out) {
  if (n > 0 && in == nullptr) return NullArgument(array);
  for (size_t i = 0; i < n; ++i) {
    if (in[i] == nullptr) return NullArgument(element);
    out->emplace_back(in[i]);
  }
  return absl::OkStatus();
}

}  // namespace ambient::capi
