// ParseAuthority on arbitrary bytes: never crashes, and what it accepts
// formats back to text that parses to the same authority.
#include <cstdint>
#include <cstdlib>

#include "ambient/hbone/authority.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto a = ambient::hbone::ParseAuthority(text);
  if (!a.ok()) return 0;
  auto again = ambient::hbone::ParseAuthority(a->ToString());
  if (!again.ok() || again->host != a->host || again->port != a->port || again->kind != a->kind) {
    std::abort();
  }
  return 0;
}
