// Fuzzes SocketAddress::Parse (addresses from flags and config): no crash,
// and whatever parses prints back to text that parses to the same address.
#include <cstddef>
#include <cstdint>

#include "ambient/netns/socket_address.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ambient::netns::SocketAddress> a = ambient::netns::SocketAddress::Parse(text);
  if (!a.ok()) return 0;
  absl::StatusOr<ambient::netns::SocketAddress> b =
      ambient::netns::SocketAddress::Parse(a->ToString());
  if (!b.ok() || *a != *b) __builtin_trap();
  return 0;
}
