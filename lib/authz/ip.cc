#include "ambient/authz/ip.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ambient::authz {

absl::StatusOr<IpAddr> IpAddr::Parse(absl::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) {
    return absl::InvalidArgumentError(absl::StrCat("invalid IP address \"", text, "\""));
  }
  char buf[INET6_ADDRSTRLEN + 1];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  uint8_t raw[16];
  if (inet_pton(AF_INET, buf, raw) == 1) return FromBytes(absl::string_view(reinterpret_cast<char*>(raw), 4));
  if (inet_pton(AF_INET6, buf, raw) == 1) return FromBytes(absl::string_view(reinterpret_cast<char*>(raw), 16));
  return absl::InvalidArgumentError(absl::StrCat("invalid IP address \"", text, "\""));
}

absl::StatusOr<IpAddr> IpAddr::FromBytes(absl::string_view bytes) {
  if (bytes.size() != 4 && bytes.size() != 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("an IP address is 4 or 16 bytes, not ", bytes.size()));
  }
  IpAddr ip;
  ip.v4_ = bytes.size() == 4;
  std::memcpy(ip.b_.data(), bytes.data(), bytes.size());
  return ip;
}

IpAddr IpAddr::V4(uint32_t host_order) {
  IpAddr ip;
  uint32_t n = htonl(host_order);
  std::memcpy(ip.b_.data(), &n, 4);
  return ip;
}

std::string IpAddr::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(v4_ ? AF_INET : AF_INET6, b_.data(), buf, sizeof(buf));
  return buf;
}

absl::StatusOr<IpPrefix> IpPrefix::FromBytes(absl::string_view bytes, uint32_t length) {
  auto addr = IpAddr::FromBytes(bytes);
  if (!addr.ok()) return addr.status();
  const uint32_t max = addr->is_v4() ? 32 : 128;
  if (length > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefix length ", length, " is longer than the address (", max, " bits)"));
  }
  // Host bits beyond the prefix must be zero: "10.0.0.1/8" is a mistake, not a network.
  absl::string_view b = addr->bytes();
  for (uint32_t bit = length; bit < max; ++bit) {
    if ((static_cast<uint8_t>(b[bit / 8]) >> (7 - bit % 8)) & 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prefix ", addr->ToString(), "/", length, " has host bits set beyond its length"));
    }
  }
  IpPrefix p;
  p.addr_ = *addr;
  p.length_ = static_cast<int>(length);
  return p;
}

absl::StatusOr<IpPrefix> IpPrefix::Parse(absl::string_view text) {
  size_t slash = text.find('/');
  auto addr = IpAddr::Parse(text.substr(0, slash));
  if (!addr.ok()) return addr.status();
  uint32_t length = addr->is_v4() ? 32 : 128;
  if (slash != absl::string_view::npos) {
    absl::string_view len = text.substr(slash + 1);
    if (len.empty() || len.size() > 3 || !absl::SimpleAtoi(len, &length)) {
      return absl::InvalidArgumentError(absl::StrCat("invalid prefix length in \"", text, "\""));
    }
  }
  return FromBytes(addr->bytes(), length);
}

bool IpPrefix::Contains(const IpAddr& ip) const {
  if (ip.is_v4() != addr_.is_v4()) return false;
  absl::string_view a = addr_.bytes(), b = ip.bytes();
  int full = length_ / 8;
  if (std::memcmp(a.data(), b.data(), full) != 0) return false;
  int rest = length_ % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (static_cast<uint8_t>(a[full]) & mask) == (static_cast<uint8_t>(b[full]) & mask);
}

std::string IpPrefix::ToString() const { return absl::StrCat(addr_.ToString(), "/", length_); }

}  // namespace ambient::authz
