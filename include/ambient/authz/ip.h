// ambient/authz/ip.h: IP addresses and CIDR prefixes as authorization sees them.
//
// Small value types with no allocation: an IpAddr is an IPv4 or IPv6 address;
// an IpPrefix is an address with a prefix length. An IPv4 prefix never
// contains an IPv6 address and the other way round (as in ztunnel).
#ifndef AMBIENT_AUTHZ_IP_H_
#define AMBIENT_AUTHZ_IP_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ambient::authz {

class IpAddr {
 public:
  // An IPv4 0.0.0.0.
  IpAddr() = default;

  // Parse reads "198.18.0.1" or "2001:db8::1" (no brackets, no zone).
  static absl::StatusOr<IpAddr> Parse(absl::string_view text);
  // FromBytes takes 4 (IPv4) or 16 (IPv6) raw network-order bytes.
  static absl::StatusOr<IpAddr> FromBytes(absl::string_view bytes);
  static IpAddr V4(uint32_t host_order);

  bool is_v4() const { return v4_; }
  // bytes() is 4 or 16 bytes long, network order.
  absl::string_view bytes() const {
    return absl::string_view(reinterpret_cast<const char*>(b_.data()), v4_ ? 4 : 16);
  }
  std::string ToString() const;

  friend bool operator==(const IpAddr& a, const IpAddr& b) {
    return a.v4_ == b.v4_ && a.b_ == b.b_;
  }
  friend bool operator!=(const IpAddr& a, const IpAddr& b) { return !(a == b); }

 private:
  bool v4_ = true;
  std::array<uint8_t, 16> b_{};
};

class IpPrefix {
 public:
  // Parse reads "198.18.0.0/15", "2001:db8::/32", or a bare address (full length).
  // Host bits beyond the prefix must be zero.
  static absl::StatusOr<IpPrefix> Parse(absl::string_view text);
  // FromBytes is the xDS form: raw address bytes plus a prefix length.
  static absl::StatusOr<IpPrefix> FromBytes(absl::string_view bytes, uint32_t length);

  const IpAddr& addr() const { return addr_; }
  int length() const { return length_; }
  bool Contains(const IpAddr& ip) const;
  std::string ToString() const;

  friend bool operator==(const IpPrefix& a, const IpPrefix& b) {
    return a.addr_ == b.addr_ && a.length_ == b.length_;
  }

 private:
  IpAddr addr_;
  int length_ = 0;
};

}  // namespace ambient::authz

#endif  // AMBIENT_AUTHZ_IP_H_
