// Internal to lib/redirect: a netlink socket that lives in a pod's network
// namespace, with the two exchanges the appliers need: send a batch of
// requests and collect their acknowledgements, and run a dump.
#ifndef AMBIENT_LIB_REDIRECT_NETLINK_H_
#define AMBIENT_LIB_REDIRECT_NETLINK_H_

#include <linux/netlink.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/base/errno_status.h"
#include "ambient/netns/fd.h"

namespace ambient::redirect::internal {

// One request's outcome in a batch: 0 or a negative errno.
struct Ack {
  uint32_t seq = 0;
  int error = 0;
};

class NetlinkSocket {
 public:
  // Adopt takes a netlink socket created (in some namespace) by the caller
  // and sets a receive timeout (the kernel binds it on the first send).
  static absl::StatusOr<NetlinkSocket> Adopt(netns::UniqueFd fd);

  NetlinkSocket(NetlinkSocket&&) = default;
  NetlinkSocket& operator=(NetlinkSocket&&) = default;

  uint32_t NextSeq() { return seq_++; }
  // ReserveSeqs takes `n` consecutive sequence numbers and returns the first.
  uint32_t ReserveSeqs(uint32_t n) {
    uint32_t first = seq_;
    seq_ += n;
    return first;
  }
  int fd() const { return fd_.get(); }

  // Send writes `len` bytes (one or more netlink messages) in one datagram.
  absl::Status Send(const void* buf, size_t len);

  // CollectAcks reads acknowledgements until the one for `last_seq` arrives,
  // and returns every error ack seen (and that last one).
  absl::StatusOr<std::vector<Ack>> CollectAcks(uint32_t last_seq);

  // Dump sends the request in `buf` (NLM_F_DUMP set by the caller) and calls
  // `fn` for every reply message until NLMSG_DONE. An error reply ends the
  // dump with that errno.
  absl::Status Dump(const void* buf, size_t len, uint32_t seq,
                    const std::function<absl::Status(const struct nlmsghdr*)>& fn);

 private:
  explicit NetlinkSocket(netns::UniqueFd fd) : fd_(std::move(fd)) {}

  netns::UniqueFd fd_;
  uint32_t seq_ = 1;
  std::unique_ptr<char[]> rbuf_;  // kRecvBuffer bytes, not zeroed
};

}  // namespace ambient::redirect::internal

#endif  // AMBIENT_LIB_REDIRECT_NETLINK_H_
