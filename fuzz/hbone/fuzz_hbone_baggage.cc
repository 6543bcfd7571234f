// ParseBaggage on arbitrary bytes: never crashes, and what it returns
// survives BuildBaggage -> ParseBaggage unchanged (apart from the workload
// type, which BuildBaggage defaults to deployment).
#include <cstdint>
#include <cstdlib>

#include "ambient/hbone/baggage.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto w = ambient::hbone::ParseBaggage(text);
  if (!w.ok()) return 0;
  if (w->workload_type.empty() && !w->name.empty()) std::abort();
  auto again = ambient::hbone::ParseBaggage(ambient::hbone::BuildBaggage(*w));
  if (!again.ok() || *again != *w) std::abort();
  return 0;
}
