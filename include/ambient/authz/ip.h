// ambient/authz/ip.h: IP addresses and CIDR prefixes as authorization sees them.
//
// An IpPrefix is an ambient::IpAddress (ambient/base/address.h) with a prefix
// length, a small value type with no allocation. An IPv4 prefix never
// contains an IPv6 address and the other way round (as in ztunnel).
#ifndef AMBIENT_AUTHZ_IP_H_
#define AMBIENT_AUTHZ_IP_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/base/address.h"

namespace ambient::authz {

class IpPrefix {
 public:
  // Parse reads "198.18.0.0/15", "2001:db8::/32", or a bare address (full length).
  // Host bits beyond the prefix must be zero.
  static absl::StatusOr<IpPrefix> Parse(absl::string_view text);
  // FromBytes is the xDS form: raw address bytes plus a prefix length.
  static absl::StatusOr<IpPrefix> FromBytes(absl::string_view bytes, uint32_t length);

  const IpAddress& addr() const { return addr_; }
  int length() const { return length_; }
  bool Contains(const IpAddress& ip) const;
  std::string ToString() const;

  friend bool operator==(const IpPrefix& a, const IpPrefix& b) {
    return a.addr_ == b.addr_ && a.length_ == b.length_;
  }

 private:
  IpAddress addr_;
  int length_ = 0;
};

}  // namespace ambient::authz

#endif  // AMBIENT_AUTHZ_IP_H_
