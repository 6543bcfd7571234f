// ambient/netns/socket_address.h: an IPv4 or IPv6 socket address as a value.
//
// SocketAddress wraps a sockaddr_in / sockaddr_in6 so it can be passed to and
// returned from the socket calls of this layer without casts at every call
// site. It is a plain value type: copyable, comparable, no resources.
#ifndef AMBIENT_NETNS_SOCKET_ADDRESS_H_
#define AMBIENT_NETNS_SOCKET_ADDRESS_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ambient::netns {

class SocketAddress {
 public:
  // An empty address (family() == AF_UNSPEC).
  SocketAddress() = default;

  // Parse reads "IPv4:PORT" or "[IPv6]:PORT" (port 0-65535, decimal).
  // Errors: InvalidArgument with what is wrong.
  static absl::StatusOr<SocketAddress> Parse(absl::string_view text);
  // ParseIp reads a bare IPv4 or IPv6 address and gives it `port`.
  static absl::StatusOr<SocketAddress> ParseIp(absl::string_view ip, uint16_t port = 0);
  // FromSockaddr copies an AF_INET or AF_INET6 sockaddr of `len` bytes.
  // Errors: InvalidArgument for another family or a short length.
  static absl::StatusOr<SocketAddress> FromSockaddr(const sockaddr* sa, socklen_t len);
  // Any / Loopback: 0.0.0.0 / :: and 127.0.0.1 / ::1 with `port`.
  static SocketAddress Any(int family, uint16_t port);
  static SocketAddress Loopback(int family, uint16_t port);

  int family() const { return storage_.ss_family; }
  uint16_t port() const;
  void set_port(uint16_t port);
  // SameIp reports whether both addresses have the same family and IP.
  bool SameIp(const SocketAddress& other) const;
  // IsV4Mapped reports whether this is an IPv6 ::ffff:a.b.c.d address;
  // Unmapped returns the plain IPv4 form of such an address (else a copy).
  bool IsV4Mapped() const;
  SocketAddress Unmapped() const;

  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* mutable_sockaddr() { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const;

  // ToString renders "1.2.3.4:80" or "[2001:db8::1]:80" ("" when empty).
  std::string ToString() const;
  // IpString renders just the IP ("" when empty).
  std::string IpString() const;

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) {
    return a.SameIp(b) && a.port() == b.port();
  }
  friend bool operator!=(const SocketAddress& a, const SocketAddress& b) { return !(a == b); }

 private:
  sockaddr_storage storage_{};
};

}  // namespace ambient::netns

#endif  // AMBIENT_NETNS_SOCKET_ADDRESS_H_
