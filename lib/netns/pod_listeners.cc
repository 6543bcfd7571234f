#include "ambient/netns/pod_listeners.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "ambient/base/status.h"
#include "ambient/base/errno_status.h"
#include "netns/sockopt.h"

namespace ambient::netns {
namespace {

// BorrowedNetnsFactory enters a Netns the caller keeps owning.
class BorrowedNetnsFactory final : public SocketFactory {
 public:
  explicit BorrowedNetnsFactory(const Netns& ns) : ns_(ns) {}
  absl::StatusOr<UniqueFd> Socket(int domain, int type, int protocol) override {
    return SocketIn(ns_, domain, type, protocol);
  }
  absl::Status Run(absl::FunctionRef<absl::Status()> fn) override { return RunIn(ns_, fn); }

 private:
  const Netns& ns_;
};

// Creating sockets below runs inside the pod netns already, so plain
// socket(2) calls land there.
absl::StatusOr<PodListener> MakeListener(ListenerKind kind, const SocketAddress& addr,
                                         const PodListenerOptions& options, bool want_transparent) {
  const bool tcp = kind != ListenerKind::kDnsUdp;
  const std::string what =
      absl::StrCat(ListenerKindName(kind), " listener on ", addr.ToString());
  int raw = socket(addr.family(), (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC,
                   0);
  if (raw < 0) return ErrnoStatus(errno, absl::StrCat("socket for ", what));
  PodListener listener{kind, UniqueFd(raw), SocketAddress(), false};
  const int fd = listener.fd.get();
  absl::Status s;
  if (addr.family() == AF_INET6) {
    // Wildcard listeners are dual-stack; the ::1 DNS pair is IPv6 only.
    const bool any = addr.IpString() == "::";
    s.Update(SetIntOption(fd, IPPROTO_IPV6, IPV6_V6ONLY, any ? 0 : 1, "IPV6_V6ONLY"));
  }
  if (tcp) s.Update(SetIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR"));
  if (options.reuse_port) {
    s.Update(SetIntOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT"));
  }
  s.Update(SetMark(fd, options.mark));
  if (!s.ok()) return Prefixed(what, s);
  if (want_transparent && options.transparent != Transparency::kOff) {
    absl::Status t = SetTransparent(fd, addr.family());
    if (t.ok()) {
      listener.transparent = true;
    } else if (options.transparent == Transparency::kRequired) {
      return Prefixed(what, t);
    }
  }
  if (bind(fd, addr.sockaddr_ptr(), addr.size()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("bind ", what));
  }
  if (tcp && listen(fd, options.backlog) != 0) {
    return ErrnoStatus(errno, absl::StrCat("listen ", what));
  }
  SocketAddress local;
  socklen_t len = sizeof(sockaddr_storage);
  if (getsockname(fd, local.mutable_sockaddr(), &len) != 0) {
    return ErrnoStatus(errno, absl::StrCat("getsockname ", what));
  }
  listener.local = local;
  return listener;
}

// HasIpv6 reports whether the current netns can make IPv6 sockets.
bool HasIpv6() {
  int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  UniqueFd closer(fd);
  return true;
}

}  // namespace

const char* ListenerKindName(ListenerKind kind) {
  switch (kind) {
    case ListenerKind::kOutbound: return "outbound";
    case ListenerKind::kInboundPlaintext: return "inbound";
    case ListenerKind::kInboundHbone: return "hbone";
    case ListenerKind::kDnsUdp: return "dns-udp";
    case ListenerKind::kDnsTcp: return "dns-tcp";
  }
  return "unknown";
}

absl::StatusOr<PodListenerSet> PodListenerSet::Open(SocketFactory& factory,
                                                    const PodListenerOptions& options) {
  if (options.backlog <= 0) return absl::InvalidArgumentError("listen backlog must be positive");
  PodListenerSet set;
  absl::Status status = factory.Run([&]() -> absl::Status {
    const bool v6 = HasIpv6();
    const int wild_family = v6 ? AF_INET6 : AF_INET;
    const struct {
      ListenerKind kind;
      uint16_t port;
    } tcp[] = {
        {ListenerKind::kOutbound, options.outbound_port},
        {ListenerKind::kInboundPlaintext, options.inbound_plaintext_port},
        {ListenerKind::kInboundHbone, options.inbound_hbone_port},
    };
    for (const auto& t : tcp) {
      absl::StatusOr<PodListener> l =
          MakeListener(t.kind, SocketAddress::Any(wild_family, t.port), options, true);
      if (!l.ok()) return l.status();
      set.listeners_.push_back(std::move(*l));
    }
    if (!options.dns) return absl::OkStatus();
    for (int family : {AF_INET, AF_INET6}) {
      if (family == AF_INET6 && !v6) break;
      for (ListenerKind kind : {ListenerKind::kDnsUdp, ListenerKind::kDnsTcp}) {
        absl::StatusOr<PodListener> l =
            MakeListener(kind, SocketAddress::Loopback(family, options.dns_port), options, false);
        if (!l.ok()) {
          // No ::1 on the pod's loopback (IPv6 disabled there): IPv4 DNS only.
          if (family == AF_INET6 && kind == ListenerKind::kDnsUdp &&
              absl::IsUnavailable(l.status())) {
            break;
          }
          return l.status();
        }
        set.listeners_.push_back(std::move(*l));
      }
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;  // `set` closes whatever was opened
  return set;
}

absl::StatusOr<PodListenerSet> PodListenerSet::Open(const Netns& ns,
                                                    const PodListenerOptions& options) {
  BorrowedNetnsFactory factory(ns);
  return Open(factory, options);
}

const PodListener* PodListenerSet::Find(ListenerKind kind, int family) const {
  for (const PodListener& l : listeners_) {
    if (l.kind == kind && (family == AF_UNSPEC || l.local.family() == family)) return &l;
  }
  return nullptr;
}

}  // namespace ambient::netns
