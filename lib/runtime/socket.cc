#include "ambient/runtime/socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "ambient/base/errno_status.h"

namespace ambient::runtime {

namespace {
absl::StatusOr<SocketAddress> NameOf(int fd, bool peer) {
  SocketAddress out;
  socklen_t len = SocketAddress::capacity();
  int r = peer ? getpeername(fd, out.mutable_sockaddr(), &len)
               : getsockname(fd, out.mutable_sockaddr(), &len);
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
  if (bind(fd, addr.sockaddr_ptr(), addr.size()) != 0) {
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
  if (connect(fd, addr.sockaddr_ptr(), addr.size()) != 0 && errno != EINPROGRESS) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, absl::StrCat("connect ", addr.ToString()));
  }
  return fd;
}

absl::Status StartConnectOn(int fd, const SocketAddress& addr) {
  if (absl::Status st = SetNonBlocking(fd); !st.ok()) return st;
  TuneTcp(fd);
  if (connect(fd, addr.sockaddr_ptr(), addr.size()) != 0 && errno != EINPROGRESS) {
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
