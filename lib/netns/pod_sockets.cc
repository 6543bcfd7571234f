#include "ambient/netns/pod_sockets.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "ambient/base/errno_status.h"
#include "ambient/base/status.h"
#include "netns/sockopt.h"

namespace ambient::netns {
namespace {

// From linux/netfilter_ipv4.h and linux/netfilter_ipv6/ip6_tables.h, whose
// headers do not mix well with the libc ones.
constexpr int kSoOriginalDst = 80;
constexpr int kIp6tSoOriginalDst = 80;
#ifndef IPV6_FREEBIND
constexpr int kIpv6Freebind = 78;
#else
constexpr int kIpv6Freebind = IPV6_FREEBIND;
#endif

absl::StatusOr<UniqueFd> MarkedTcpSocket(SocketFactory& factory, int family, uint32_t mark,
                                         absl::FunctionRef<absl::Status(int)> more) {
  if (family != AF_INET && family != AF_INET6) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported address family ", family));
  }
  UniqueFd sock;
  absl::Status status = factory.Run([&]() -> absl::Status {
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return ErrnoStatus(errno, "socket for an upstream connection");
    sock.reset(fd);
    absl::Status s = SetMark(fd, mark);
    if (!s.ok()) return s;
    return more(fd);
  });
  if (!status.ok()) return status;
  return sock;
}

}  // namespace

absl::StatusOr<SocketAddress> OriginalDestination(int fd) {
  SocketAddress local;
  socklen_t len = sizeof(sockaddr_storage);
  if (getsockname(fd, local.mutable_sockaddr(), &len) != 0) {
    return ErrnoStatus(errno, "getsockname on an accepted connection");
  }
  if (local.family() != AF_INET && local.family() != AF_INET6) {
    return absl::InvalidArgumentError("original destination asked of a non-IP socket");
  }
  sockaddr_in v4{};
  len = sizeof(v4);
  if (getsockopt(fd, SOL_IP, kSoOriginalDst, &v4, &len) == 0) {
    absl::StatusOr<SocketAddress> a = SocketAddress::FromSockaddr(
        reinterpret_cast<const sockaddr*>(&v4), len);
    if (a.ok()) return a->Unmapped();
  }
  if (local.family() == AF_INET6) {
    sockaddr_in6 v6{};
    len = sizeof(v6);
    if (getsockopt(fd, SOL_IPV6, kIp6tSoOriginalDst, &v6, &len) == 0) {
      absl::StatusOr<SocketAddress> a = SocketAddress::FromSockaddr(
          reinterpret_cast<const sockaddr*>(&v6), len);
      if (a.ok()) return a->Unmapped();
    }
  }
  // Not NATed (TPROXY delivery, or no conntrack): the local address is it.
  return local.Unmapped();
}

absl::StatusOr<UniqueFd> OutboundUpstreamSocket(SocketFactory& factory, int family,
                                                uint32_t mark) {
  return MarkedTcpSocket(factory, family, mark, [](int) { return absl::OkStatus(); });
}

absl::StatusOr<UniqueFd> InboundUpstreamSocket(SocketFactory& factory, const SocketAddress& client,
                                               const SocketAddress& destination, uint32_t mark,
                                               bool* spoofed) {
  if (client.family() == AF_UNSPEC || destination.family() == AF_UNSPEC) {
    return absl::InvalidArgumentError("inbound upstream socket needs client and destination");
  }
  const SocketAddress src = client.Unmapped();
  const SocketAddress dst = destination.Unmapped();
  const bool spoof = src.family() == dst.family() && !src.SameIp(dst);
  if (spoofed != nullptr) *spoofed = spoof;
  return MarkedTcpSocket(factory, dst.family(), mark, [&](int fd) -> absl::Status {
    if (!spoof) return absl::OkStatus();
    absl::Status s = SetTransparent(fd, dst.family());
    if (dst.family() == AF_INET6) {
      s.Update(SetIntOption(fd, SOL_IPV6, kIpv6Freebind, 1, "IPV6_FREEBIND"));
    } else {
      s.Update(SetIntOption(fd, SOL_IP, IP_FREEBIND, 1, "IP_FREEBIND"));
    }
    if (!s.ok()) return s;
    SocketAddress bind_to = src;
    bind_to.set_port(0);
    if (bind(fd, bind_to.sockaddr_ptr(), bind_to.size()) != 0) {
      return ErrnoStatus(errno, absl::StrCat("bind upstream socket to client IP ",
                                             bind_to.IpString()));
    }
    return absl::OkStatus();
  });
}

}  // namespace ambient::netns
