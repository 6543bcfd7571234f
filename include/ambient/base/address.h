// ambient/base/address.h: IP addresses and socket addresses, the one
// vocabulary every layer uses.
//
// IpAddress is an IPv4 or IPv6 address held as network-order bytes.
// SocketAddress is an IpAddress with a port, stored as a sockaddr_in /
// sockaddr_in6 so it can be handed to bind/connect/getsockname without casts.
// Both are plain values: copyable, comparable, hashable (absl), no resources.
//
// Text forms follow Go's net.SplitHostPort and ztunnel: an IPv6 socket
// address MUST be bracketed ("[2001:db8::1]:80"), brackets are only for IPv6,
// and a bare IP (IpAddress::Parse, SocketAddress::ParseIp) has neither
// brackets nor a zone. Parsing and printing addresses happens here and
// nowhere else.
#ifndef AMBIENT_BASE_ADDRESS_H_
#define AMBIENT_BASE_ADDRESS_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ambient {

class IpAddress {
 public:
  // An IPv4 0.0.0.0.
  IpAddress() = default;

  // Parse reads a bare "198.18.0.1" or "2001:db8::1" (no brackets, no zone,
  // no port). Errors: InvalidArgument `invalid IP address "<text>"`.
  static absl::StatusOr<IpAddress> Parse(absl::string_view text);
  // FromBytes takes 4 (IPv4) or 16 (IPv6) raw network-order bytes.
  // Errors: InvalidArgument "an IP address is 4 or 16 bytes, not N".
  static absl::StatusOr<IpAddress> FromBytes(absl::string_view bytes);
  // V4 makes an IPv4 address from a host-order 32-bit value.
  static IpAddress V4(uint32_t host_order);
  // Any / Loopback: 0.0.0.0 / :: and 127.0.0.1 / ::1 (AF_INET6 gives IPv6,
  // anything else IPv4).
  static IpAddress Any(int family);
  static IpAddress Loopback(int family);

  // family is AF_INET or AF_INET6.
  int family() const { return v4_ ? AF_INET : AF_INET6; }
  bool is_v4() const { return v4_; }
  // bytes() is 4 or 16 bytes long, network order.
  absl::string_view bytes() const {
    return absl::string_view(reinterpret_cast<const char*>(b_.data()), v4_ ? 4 : 16);
  }
  // IsV4Mapped reports whether this is an IPv6 ::ffff:a.b.c.d address;
  // Unmapped returns the plain IPv4 form of such an address (else a copy).
  bool IsV4Mapped() const;
  IpAddress Unmapped() const;
  bool IsLoopback() const;
  bool IsUnspecified() const;

  // ToString renders "198.18.0.1" or "2001:db8::1" (RFC 5952 form).
  std::string ToString() const;

  friend bool operator==(const IpAddress& a, const IpAddress& b) {
    return a.v4_ == b.v4_ && a.b_ == b.b_;
  }
  friend bool operator!=(const IpAddress& a, const IpAddress& b) { return !(a == b); }
  // IPv4 sorts before IPv6; within a family, by bytes.
  friend bool operator<(const IpAddress& a, const IpAddress& b) {
    if (a.v4_ != b.v4_) return a.v4_;
    return a.b_ < b.b_;
  }
  template <typename H>
  friend H AbslHashValue(H h, const IpAddress& ip) {
    return H::combine(std::move(h), ip.v4_, ip.b_);
  }

 private:
  bool v4_ = true;
  std::array<uint8_t, 16> b_{};
};

class SocketAddress {
 public:
  // An empty address (family() == AF_UNSPEC, size() == 0, ToString() "").
  SocketAddress() = default;
  // An address of `ip` with `port`.
  SocketAddress(const IpAddress& ip, uint16_t port);

  // Parse reads "IPv4:PORT" or "[IPv6]:PORT" (port 0-65535, decimal digits).
  // Errors (InvalidArgument), with the text C-escaped:
  //   `invalid address "<t>": want IPv4:PORT or [IPv6]:PORT` (no colon, or an
  //     unbracketed IPv6),
  //   `invalid address "<t>": want [IPv6]:PORT` (unclosed bracket, nothing or
  //     something other than ':' after ']'),
  //   `invalid address "<t>": brackets need IPv6` ("[1.2.3.4]:80"),
  //   `invalid port in "<t>": want 0-65535`,
  //   `invalid IP address "<ip>"` (the host is not a numeric IP).
  static absl::StatusOr<SocketAddress> Parse(absl::string_view text);
  // ParseIp reads a bare IPv4 or IPv6 address (IpAddress::Parse) and gives it
  // `port`.
  static absl::StatusOr<SocketAddress> ParseIp(absl::string_view ip, uint16_t port = 0);
  // FromSockaddr copies an AF_INET or AF_INET6 sockaddr of `len` bytes.
  // Errors: InvalidArgument for another family or a short length.
  static absl::StatusOr<SocketAddress> FromSockaddr(const sockaddr* sa, socklen_t len);
  // Any / Loopback: 0.0.0.0 / :: and 127.0.0.1 / ::1 with `port`.
  static SocketAddress Any(int family, uint16_t port);
  static SocketAddress Loopback(int family, uint16_t port);

  // family is AF_INET, AF_INET6 or (empty) AF_UNSPEC.
  int family() const { return storage_.ss_family; }
  bool empty() const { return family() == AF_UNSPEC; }
  // ip is the address without the port (0.0.0.0 when empty).
  IpAddress ip() const;
  uint16_t port() const;
  void set_port(uint16_t port);
  // SameIp reports whether both addresses have the same family and IP.
  bool SameIp(const SocketAddress& other) const;
  // IsV4Mapped reports whether the IP is an IPv6 ::ffff:a.b.c.d address;
  // Unmapped returns the plain IPv4 form of such an address (else a copy).
  bool IsV4Mapped() const;
  SocketAddress Unmapped() const;

  // The sockaddr view for bind/connect/sendto (sockaddr_ptr, size) and for
  // getsockname/getpeername/accept (mutable_sockaddr with capacity(); the
  // kernel fills in the family, so no length needs to be kept).
  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* mutable_sockaddr() { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const;
  static constexpr socklen_t capacity() { return sizeof(sockaddr_storage); }

  // ToString renders "1.2.3.4:80" or "[2001:db8::1]:80" ("" when empty).
  std::string ToString() const;
  // IpString renders just the IP ("" when empty).
  std::string IpString() const;

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) {
    return a.SameIp(b) && a.port() == b.port();
  }
  friend bool operator!=(const SocketAddress& a, const SocketAddress& b) { return !(a == b); }
  // Empty first, then by IP (IpAddress order), then by port.
  friend bool operator<(const SocketAddress& a, const SocketAddress& b);
  template <typename H>
  friend H AbslHashValue(H h, const SocketAddress& a) {
    if (a.empty()) return H::combine(std::move(h), true);
    return H::combine(std::move(h), a.ip(), a.port(), false);
  }

 private:
  sockaddr_storage storage_{};
};

}  // namespace ambient

#endif  // AMBIENT_BASE_ADDRESS_H_
