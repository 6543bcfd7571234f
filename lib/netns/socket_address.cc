#include "ambient/netns/socket_address.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/escaping.h"

namespace ambient::netns {
namespace {

const sockaddr_in* V4(const sockaddr_storage& s) { return reinterpret_cast<const sockaddr_in*>(&s); }
const sockaddr_in6* V6(const sockaddr_storage& s) {
  return reinterpret_cast<const sockaddr_in6*>(&s);
}

}  // namespace

absl::StatusOr<SocketAddress> SocketAddress::ParseIp(absl::string_view ip, uint16_t port) {
  std::string text(ip);
  if (text.empty() || text.size() > INET6_ADDRSTRLEN || text.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid IP address \"", absl::CHexEscape(ip), "\""));
  }
  SocketAddress out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage_);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return out;
  }
  out = SocketAddress();
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage_);
  if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return out;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("invalid IP address \"", absl::CHexEscape(ip), "\""));
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
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid address \"", absl::CHexEscape(text), "\": want IPv4:PORT or [IPv6]:PORT"));
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
  SocketAddress out;
  if (family == AF_INET6) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage_);
    v6->sin6_family = AF_INET6;
    v6->sin6_addr = in6addr_any;
    v6->sin6_port = htons(port);
  } else {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage_);
    v4->sin_family = AF_INET;
    v4->sin_addr.s_addr = htonl(INADDR_ANY);
    v4->sin_port = htons(port);
  }
  return out;
}

SocketAddress SocketAddress::Loopback(int family, uint16_t port) {
  SocketAddress out = Any(family, port);
  if (family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&out.storage_)->sin6_addr = in6addr_loopback;
  } else {
    reinterpret_cast<sockaddr_in*>(&out.storage_)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  return out;
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
  if (family() == AF_INET) {
    return V4(storage_)->sin_addr.s_addr == V4(other.storage_)->sin_addr.s_addr;
  }
  if (family() == AF_INET6) {
    return std::memcmp(&V6(storage_)->sin6_addr, &V6(other.storage_)->sin6_addr,
                       sizeof(in6_addr)) == 0;
  }
  return true;
}

bool SocketAddress::IsV4Mapped() const {
  return family() == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&V6(storage_)->sin6_addr);
}

SocketAddress SocketAddress::Unmapped() const {
  if (!IsV4Mapped()) return *this;
  SocketAddress out = Any(AF_INET, port());
  std::memcpy(&reinterpret_cast<sockaddr_in*>(&out.storage_)->sin_addr,
              &V6(storage_)->sin6_addr.s6_addr[12], 4);
  return out;
}

socklen_t SocketAddress::size() const {
  if (family() == AF_INET) return sizeof(sockaddr_in);
  if (family() == AF_INET6) return sizeof(sockaddr_in6);
  return 0;
}

std::string SocketAddress::IpString() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &V4(storage_)->sin_addr, buf, sizeof(buf));
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &V6(storage_)->sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

std::string SocketAddress::ToString() const {
  if (family() == AF_INET) return absl::StrCat(IpString(), ":", port());
  if (family() == AF_INET6) return absl::StrCat("[", IpString(), "]:", port());
  return "";
}

}  // namespace ambient::netns
