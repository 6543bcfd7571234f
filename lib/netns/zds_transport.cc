#include "netns/zds_transport.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "ambient/netns/zds.h"
#include "ambient/base/errno_status.h"

namespace ambient::netns::zds {
namespace {

constexpr int kMaxFdsPerDatagram = 16;  // room to receive (and close) a few too many

int PollTimeoutMs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(absl::ToInt64Milliseconds(left + absl::Microseconds(999)));
}

}  // namespace

static_assert(kMaxSocketPathLength == sizeof(sockaddr_un::sun_path) - 1,
              "kMaxSocketPathLength must leave sun_path room for its NUL");

absl::Status CheckSocketPath(absl::string_view path) {
  if (path.empty() || path.size() > kMaxSocketPathLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("ZDS socket path must be 1-", kMaxSocketPathLength, " bytes"));
  }
  if (path.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("ZDS socket path contains a NUL byte");
  }
  return absl::OkStatus();
}

absl::Status WaitOn(int fd, short events, int stop_fd, absl::Duration timeout) {
  const absl::Time deadline =
      timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
  for (;;) {
    pollfd p[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    int n = poll(p, stop_fd >= 0 ? 2 : 1, PollTimeoutMs(deadline));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "poll");
    }
    if (stop_fd >= 0 && (p[1].revents & POLLIN) != 0) return absl::CancelledError("stopped");
    if (p[0].revents != 0) return absl::OkStatus();
    if (n == 0 && PollTimeoutMs(deadline) == 0) {
      return absl::DeadlineExceededError("timed out waiting for the peer");
    }
  }
}

absl::StatusOr<Datagram> RecvDatagram(int fd, int stop_fd, absl::Duration timeout) {
  for (;;) {
    absl::Status ready = WaitOn(fd, POLLIN, stop_fd, timeout);
    if (!ready.ok()) return ready;
    Datagram dg;
    char buf[kMaxMessageSize];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerDatagram)];
    iovec iov{buf, sizeof(buf)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return ErrnoStatus(errno, "recvmsg");
    }
    // Take ownership of every descriptor first, so no path below leaks one.
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int received;
        std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        dg.fds.emplace_back(received);
      }
    }
    if (n == 0 && dg.fds.empty()) return absl::UnavailableError("peer closed the connection");
    dg.truncated = (msg.msg_flags & MSG_TRUNC) != 0;
    dg.control_truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
    dg.bytes.assign(buf, static_cast<size_t>(n));
    return dg;
  }
}

absl::Status SendDatagram(int fd, absl::string_view bytes, int pass_fd, int stop_fd,
                          absl::Duration timeout) {
  if (bytes.size() > kMaxMessageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("ZDS message of ", bytes.size(), " bytes exceeds ", kMaxMessageSize));
  }
  for (;;) {
    iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (pass_fd >= 0) {
      std::memset(control, 0, sizeof(control));
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return absl::OkStatus();
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return ErrnoStatus(errno, "sendmsg");
    absl::Status ready = WaitOn(fd, POLLOUT, stop_fd, timeout);
    if (!ready.ok()) return ready;
  }
}

absl::StatusOr<Datagram> ReceiveDatagramNow(int fd) {
  return RecvDatagram(fd, -1, absl::ZeroDuration());
}

absl::Status SendDatagramNow(int fd, absl::string_view bytes) {
  return SendDatagram(fd, bytes, -1, -1, absl::ZeroDuration());
}

bool SleepUnlessStopped(int stop_fd, absl::Duration d) {
  const absl::Time deadline = absl::Now() + d;
  for (;;) {
    pollfd p{stop_fd, POLLIN, 0};
    int ms = PollTimeoutMs(deadline);
    int n = poll(&p, stop_fd >= 0 ? 1 : 0, ms);
    if (n > 0) return false;
    if (n == 0 || ms == 0) {
      if (PollTimeoutMs(deadline) == 0) return true;
    }
  }
}

absl::StatusOr<UniqueFd> MakeEventFd() {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return ErrnoStatus(errno, "eventfd");
  return UniqueFd(fd);
}

void SignalEventFd(int fd) {
  uint64_t one = 1;
  (void)!write(fd, &one, sizeof(one));
}

void DrainEventFd(int fd) {
  uint64_t v;
  (void)!read(fd, &v, sizeof(v));
}

}  // namespace ambient::netns::zds
