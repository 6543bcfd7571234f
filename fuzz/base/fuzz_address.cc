// Fuzzes the two address parsers of ambient/base/address.h (addresses come
// from flags, config files, the C ABI and CONNECT authorities): no crash, and
// whatever parses prints back to text that parses to the same value.
#include <cstddef>
#include <cstdint>

#include "ambient/base/address.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ambient::IpAddress> ip = ambient::IpAddress::Parse(text);
  if (ip.ok()) {
    absl::StatusOr<ambient::IpAddress> again = ambient::IpAddress::Parse(ip->ToString());
    if (!again.ok() || *again != *ip) __builtin_trap();
    if (ambient::SocketAddress(*ip, 1).ip() != *ip) __builtin_trap();
  }
  absl::StatusOr<ambient::SocketAddress> a = ambient::SocketAddress::Parse(text);
  if (!a.ok()) return 0;
  absl::StatusOr<ambient::SocketAddress> b = ambient::SocketAddress::Parse(a->ToString());
  if (!b.ok() || *a != *b) __builtin_trap();
  absl::StatusOr<ambient::SocketAddress> c =
      ambient::SocketAddress::FromSockaddr(a->sockaddr_ptr(), a->size());
  if (!c.ok() || *c != *a) __builtin_trap();
  return 0;
}
