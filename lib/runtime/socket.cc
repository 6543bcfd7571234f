#include "ambient/runtime/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "ambient/base/errno_status.h"
#include "ambient/hbone/authority.h"

namespace ambient::runtime {

std::string SocketAddress::Ip() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (storage.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf));
  } else if (storage.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

int SocketAddress::port() const {
  if (storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return 0;
}

std::string SocketAddress::ToString() const {
  if (storage.ss_family == AF_INET6) return absl::StrCat("[", Ip(), "]:", port());
  return absl::StrCat(Ip(), ":", port());
}

absl::StatusOr<SocketAddress> ParseSocketAddress(absl::string_view text) {
  // Port 0 ("pick one") is fine for a socket address, not for an authority.
  bool any_port = text.size() > 2 && text.substr(text.size() - 2) == ":0";
  std::string patched;
  if (any_port) patched = absl::StrCat(text.substr(0, text.size() - 1), "1");
  absl::StatusOr<hbone::Authority> a = hbone::ParseAuthority(any_port ? patched : text);
  if (a.ok() && any_port) a->port = 0;
  if (!a.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad address \"", text, "\": want ip:port or [ipv6]:port"));
  }
  SocketAddress out;
  if (a->kind == hbone::Authority::Kind::kIpv4) {
    auto* in = reinterpret_cast<sockaddr_in*>(&out.storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(a->port);
    inet_pton(AF_INET, a->host.c_str(), &in->sin_addr);
    out.len = sizeof(sockaddr_in);
  } else if (a->kind == hbone::Authority::Kind::kIpv6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(a->port);
    inet_pton(AF_INET6, a->host.c_str(), &in6->sin6_addr);
    out.len = sizeof(sockaddr_in6);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("bad address \"", text, "\": a numeric IP is needed, not a host name"));
  }
  return out;
}

namespace {
absl::StatusOr<SocketAddress> NameOf(int fd, bool peer) {
  SocketAddress out;
  out.len = sizeof(out.storage);
  int r = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&out.storage), &out.len)
               : getsockname(fd, reinterpret_cast<sockaddr*>(&out.storage), &out.len);
  if (r != 0) return ErrnoStatus(errno, peer ? "getpeername" : "getsockname");
  return out;
}
}  // namespace

absl::StatusOr<SocketAddress> LocalAddress(int fd) { return NameOf(fd, false); }
absl::StatusOr<SocketAddress> PeerAddress(int fd) { return NameOf(fd, true); }

absl::Status SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return ErrnoStatus(errno, "fcntl");
  return absl::OkStatus();
}

void TuneTcp(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  int idle = 180;
  int interval = 180;
  int count = 9;
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
}

absl::StatusOr<int> Listen(const SocketAddress& addr) {
  int fd = socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr.storage), addr.len) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, absl::StrCat("bind ", addr.ToString()));
  }
  if (listen(fd, 1024) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, "listen");
  }
  return fd;
}

absl::StatusOr<int> StartConnect(const SocketAddress& addr) {
  int fd = socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket");
  TuneTcp(fd);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr.storage), addr.len) != 0 &&
      errno != EINPROGRESS) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, absl::StrCat("connect ", addr.ToString()));
  }
  return fd;
}

absl::Status StartConnectOn(int fd, const SocketAddress& addr) {
  if (absl::Status st = SetNonBlocking(fd); !st.ok()) return st;
  TuneTcp(fd);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr.storage), addr.len) != 0 &&
      errno != EINPROGRESS) {
    int err = errno;
    return ErrnoStatus(err, absl::StrCat("connect ", addr.ToString()));
  }
  return absl::OkStatus();
}

absl::Status FinishConnect(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) return ErrnoStatus(err, "connect");
  return absl::OkStatus();
}

absl::StatusOr<int> Accept(int listen_fd) {
  int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return absl::UnavailableError("no connection");
    return ErrnoStatus(errno, "accept");
  }
  TuneTcp(fd);
  return fd;
}

void AbortClose(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

}  // namespace ambient::runtime
