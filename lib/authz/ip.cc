#include "ambient/authz/ip.h"

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ambient::authz {

absl::StatusOr<IpPrefix> IpPrefix::FromBytes(absl::string_view bytes, uint32_t length) {
  auto addr = IpAddress::FromBytes(bytes);
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
  auto addr = IpAddress::Parse(text.substr(0, slash));
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

bool IpPrefix::Contains(const IpAddress& ip) const {
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
