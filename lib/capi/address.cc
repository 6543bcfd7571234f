// extern "C" shims of ambient::SocketAddress (ambient/c/address.h).
#include "ambient/c/address.h"

#include <string>

#include "absl/strings/string_view.h"
#include "ambient/base/address.h"
#include "capi/internal.h"

using ambient::capi::Guard;
using ambient::capi::NullArgument;

struct ambient_socket_address {
  ambient::SocketAddress addr;
  std::string text;  // addr.ToString()
  std::string ip;    // addr.IpString()
};

namespace {

// Make stores a new object holding `parsed` in `*out`.
absl::Status Make(absl::StatusOr<ambient::SocketAddress> parsed, ambient_socket_address** out) {
  if (!parsed.ok()) return parsed.status();
  auto* a = new ambient_socket_address;
  a->addr = *parsed;
  a->text = parsed->ToString();
  a->ip = parsed->IpString();
  *out = a;
  return absl::OkStatus();
}

}  // namespace

extern "C" {

ambient_error* ambient_socket_address_parse(const char* text, size_t len,
                                            ambient_socket_address** out) {
  return Guard([&]() -> absl::Status {
    if (text == nullptr && len > 0) return NullArgument("text");
    if (out == nullptr) return NullArgument("out");
    return Make(ambient::SocketAddress::Parse(absl::string_view(text, len)), out);
  });
}

ambient_error* ambient_socket_address_parse_ip(const char* ip, size_t len, uint16_t port,
                                               ambient_socket_address** out) {
  return Guard([&]() -> absl::Status {
    if (ip == nullptr && len > 0) return NullArgument("ip");
    if (out == nullptr) return NullArgument("out");
    return Make(ambient::SocketAddress::ParseIp(absl::string_view(ip, len), port), out);
  });
}

void ambient_socket_address_free(ambient_socket_address* addr) { delete addr; }

const char* ambient_socket_address_get0_text(const ambient_socket_address* addr) {
  return addr == nullptr ? "" : addr->text.c_str();
}

const char* ambient_socket_address_get0_ip(const ambient_socket_address* addr) {
  return addr == nullptr ? "" : addr->ip.c_str();
}

uint16_t ambient_socket_address_port(const ambient_socket_address* addr) {
  return addr == nullptr ? 0 : addr->addr.port();
}

int ambient_socket_address_ip_version(const ambient_socket_address* addr) {
  if (addr == nullptr) return 0;
  return addr->addr.family() == AF_INET6 ? 6 : 4;
}

int ambient_socket_address_is_v4_mapped(const ambient_socket_address* addr) {
  return addr != nullptr && addr->addr.IsV4Mapped() ? 1 : 0;
}

const struct sockaddr* ambient_socket_address_get0_sockaddr(const ambient_socket_address* addr,
                                                            size_t* len) {
  if (len != nullptr) *len = addr == nullptr ? 0 : addr->addr.size();
  return addr == nullptr ? nullptr : addr->addr.sockaddr_ptr();
}

}  // extern "C"
