#include "redirect/netlink.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "absl/strings/str_cat.h"

namespace ambient::redirect::internal {
namespace {

constexpr size_t kRecvBuffer = 64 * 1024;

// NLMSG_OK without its signed/unsigned comparison.
bool MsgOk(const struct nlmsghdr* h, int len) {
  return len >= static_cast<int>(sizeof(struct nlmsghdr)) &&
         h->nlmsg_len >= sizeof(struct nlmsghdr) && h->nlmsg_len <= static_cast<unsigned>(len);
}

}  // namespace

absl::StatusOr<NetlinkSocket> NetlinkSocket::Adopt(netns::UniqueFd fd) {
  if (!fd.valid()) return absl::InvalidArgumentError("no netlink socket");
  // No bind(2): the kernel binds the socket to a free port id on the first
  // send, which is all an explicit bind to port 0 would do.
  struct timeval tv = {5, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  int one = 1;
  // Acks carry only the header of the request they answer, not all of it.
  // (Extended acks are not asked for: nothing here reads them.)
  setsockopt(fd.get(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  NetlinkSocket s(std::move(fd));
  s.rbuf_.reset(new char[kRecvBuffer]);
  return s;
}

absl::Status NetlinkSocket::Send(const void* buf, size_t len) {
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof(kernel));
  kernel.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = sendto(fd_.get(), buf, len, 0, reinterpret_cast<struct sockaddr*>(&kernel),
               sizeof(kernel));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus(errno, "sending a netlink request");
  if (static_cast<size_t>(n) != len) return absl::InternalError("short netlink send");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Ack>> NetlinkSocket::CollectAcks(uint32_t last_seq) {
  std::vector<Ack> acks;
  for (;;) {
    ssize_t n = recv(fd_.get(), rbuf_.get(), kRecvBuffer, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return absl::DeadlineExceededError("no netlink acknowledgement from the kernel");
      }
      return ErrnoStatus(errno, "reading a netlink acknowledgement");
    }
    int len = static_cast<int>(n);
    for (const struct nlmsghdr* h = reinterpret_cast<const struct nlmsghdr*>(rbuf_.get());
         MsgOk(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
        return absl::DataLossError("truncated netlink acknowledgement");
      }
      const auto* err = static_cast<const struct nlmsgerr*>(NLMSG_DATA(h));
      Ack ack{h->nlmsg_seq, err->error};
      if (ack.error != 0 || ack.seq == last_seq) acks.push_back(ack);
      if (ack.seq == last_seq) return acks;
    }
  }
}

absl::Status NetlinkSocket::Dump(const void* buf, size_t len, uint32_t seq,
                                 const std::function<absl::Status(const struct nlmsghdr*)>& fn) {
  if (absl::Status s = Send(buf, len); !s.ok()) return s;
  absl::Status first = absl::OkStatus();
  for (;;) {
    ssize_t n = recv(fd_.get(), rbuf_.get(), kRecvBuffer, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "reading a netlink dump");
    }
    int left = static_cast<int>(n);
    for (const struct nlmsghdr* h = reinterpret_cast<const struct nlmsghdr*>(rbuf_.get());
         MsgOk(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) return first;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const struct nlmsgerr*>(NLMSG_DATA(h));
        if (err->error == 0) return first;
        return ErrnoStatus(-err->error, "netlink dump");
      }
      if (first.ok()) first = fn(h);
    }
  }
}

}  // namespace ambient::redirect::internal
