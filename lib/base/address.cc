#include "ambient/base/address.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ambient {
namespace {

const sockaddr_in* V4(const sockaddr_storage& s) {
  return reinterpret_cast<const sockaddr_in*>(&s);
}
const sockaddr_in6* V6(const sockaddr_storage& s) {
  return reinterpret_cast<const sockaddr_in6*>(&s);
}

absl::Status BadIp(absl::string_view text) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid IP address \"", absl::CHexEscape(text), "\""));
}

}  // namespace

// ---- IpAddress ----

absl::StatusOr<IpAddress> IpAddress::Parse(absl::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN ||
      text.find('\0') != absl::string_view::npos) {
    return BadIp(text);
  }
  char buf[INET6_ADDRSTRLEN + 1];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress ip;
  if (inet_pton(AF_INET, buf, ip.b_.data()) == 1) return ip;
  ip.b_ = {};
  if (inet_pton(AF_INET6, buf, ip.b_.data()) == 1) {
    ip.v4_ = false;
    return ip;
  }
  return BadIp(text);
}

absl::StatusOr<IpAddress> IpAddress::FromBytes(absl::string_view bytes) {
  if (bytes.size() != 4 && bytes.size() != 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("an IP address is 4 or 16 bytes, not ", bytes.size()));
  }
  IpAddress ip;
  ip.v4_ = bytes.size() == 4;
  std::memcpy(ip.b_.data(), bytes.data(), bytes.size());
  return ip;
}

IpAddress IpAddress::V4(uint32_t host_order) {
  IpAddress ip;
  uint32_t n = htonl(host_order);
  std::memcpy(ip.b_.data(), &n, 4);
  return ip;
}

IpAddress IpAddress::Any(int family) {
  IpAddress ip;
  ip.v4_ = family != AF_INET6;
  return ip;
}

IpAddress IpAddress::Loopback(int family) {
  if (family != AF_INET6) return V4(INADDR_LOOPBACK);
  IpAddress ip = Any(AF_INET6);
  ip.b_[15] = 1;
  return ip;
}

bool IpAddress::IsV4Mapped() const {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return !v4_ && std::memcmp(b_.data(), kPrefix, sizeof(kPrefix)) == 0;
}

IpAddress IpAddress::Unmapped() const {
  if (!IsV4Mapped()) return *this;
  IpAddress ip;
  std::memcpy(ip.b_.data(), b_.data() + 12, 4);
  return ip;
}

bool IpAddress::IsLoopback() const {
  if (v4_) return b_[0] == 127;
  return *this == Loopback(AF_INET6);
}

bool IpAddress::IsUnspecified() const { return *this == Any(family()); }

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  inet_ntop(family(), b_.data(), buf, sizeof(buf));
  return buf;
}

// ---- SocketAddress ----

SocketAddress::SocketAddress(const IpAddress& ip, uint16_t port) {
  if (ip.is_v4()) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage_);
    v4->sin_family = AF_INET;
    std::memcpy(&v4->sin_addr, ip.bytes().data(), 4);
    v4->sin_port = htons(port);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage_);
    v6->sin6_family = AF_INET6;
    std::memcpy(&v6->sin6_addr, ip.bytes().data(), 16);
    v6->sin6_port = htons(port);
  }
}

absl::StatusOr<SocketAddress> SocketAddress::ParseIp(absl::string_view ip, uint16_t port) {
  absl::StatusOr<IpAddress> parsed = IpAddress::Parse(ip);
  if (!parsed.ok()) return parsed.status();
  return SocketAddress(*parsed, port);
}

absl::StatusOr<SocketAddress> SocketAddress::Parse(absl::string_view text) {
  absl::string_view host, port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == absl::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid address \"", absl::CHexEscape(text), "\": want [IPv6]:PORT"));
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    if (host.find(':') == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid address \"", absl::CHexEscape(text), "\": brackets need IPv6"));
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos || text.find(':') != colon) {
      return absl::InvalidArgumentError(absl::StrCat("invalid address \"", absl::CHexEscape(text),
                                                     "\": want IPv4:PORT or [IPv6]:PORT"));
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  uint32_t port = 0;
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(port_text, &port) || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid port in \"", absl::CHexEscape(text), "\": want 0-65535"));
  }
  return ParseIp(host, static_cast<uint16_t>(port));
}

absl::StatusOr<SocketAddress> SocketAddress::FromSockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddress out;
  if (sa != nullptr && sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    std::memcpy(&out.storage_, sa, sizeof(sockaddr_in));
    return out;
  }
  if (sa != nullptr && sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    std::memcpy(&out.storage_, sa, sizeof(sockaddr_in6));
    return out;
  }
  return absl::InvalidArgumentError("not an IPv4 or IPv6 socket address");
}

SocketAddress SocketAddress::Any(int family, uint16_t port) {
  return SocketAddress(IpAddress::Any(family), port);
}

SocketAddress SocketAddress::Loopback(int family, uint16_t port) {
  return SocketAddress(IpAddress::Loopback(family), port);
}

IpAddress SocketAddress::ip() const {
  if (family() == AF_INET) {
    return *IpAddress::FromBytes(
        absl::string_view(reinterpret_cast<const char*>(&V4(storage_)->sin_addr), 4));
  }
  if (family() == AF_INET6) {
    return *IpAddress::FromBytes(
        absl::string_view(reinterpret_cast<const char*>(&V6(storage_)->sin6_addr), 16));
  }
  return IpAddress();
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(V4(storage_)->sin_port);
  if (family() == AF_INET6) return ntohs(V6(storage_)->sin6_port);
  return 0;
}

void SocketAddress::set_port(uint16_t port) {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

bool SocketAddress::SameIp(const SocketAddress& other) const {
  if (family() != other.family()) return false;
  if (empty()) return true;
  return ip() == other.ip();
}

bool SocketAddress::IsV4Mapped() const { return family() == AF_INET6 && ip().IsV4Mapped(); }

SocketAddress SocketAddress::Unmapped() const {
  if (!IsV4Mapped()) return *this;
  return SocketAddress(ip().Unmapped(), port());
}

socklen_t SocketAddress::size() const {
  if (family() == AF_INET) return sizeof(sockaddr_in);
  if (family() == AF_INET6) return sizeof(sockaddr_in6);
  return 0;
}

std::string SocketAddress::IpString() const {
  if (empty()) return "";
  return ip().ToString();
}

std::string SocketAddress::ToString() const {
  if (family() == AF_INET) return absl::StrCat(IpString(), ":", port());
  if (family() == AF_INET6) return absl::StrCat("[", IpString(), "]:", port());
  return "";
}

bool operator<(const SocketAddress& a, const SocketAddress& b) {
  if (a.empty() || b.empty()) return a.empty() && !b.empty();
  if (a.ip() != b.ip()) return a.ip() < b.ip();
  return a.port() < b.port();
}

}  // namespace ambient
