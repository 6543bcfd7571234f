// Internal to lib/netns: one ZDS datagram over a SOCK_SEQPACKET socket, with
// optional SCM_RIGHTS descriptors, bounded by a timeout and a stop eventfd.
#ifndef AMBIENT_LIB_NETNS_ZDS_TRANSPORT_H_
#define AMBIENT_LIB_NETNS_ZDS_TRANSPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ambient/netns/fd.h"
#include "ambient/netns/zds_session.h"  // Datagram

namespace ambient::netns::zds {

// RecvDatagram waits up to `timeout` (absl::InfiniteDuration() for ever) for
// one datagram on `fd` and reads it with MSG_CMSG_CLOEXEC. While waiting it
// also watches `stop_fd` (ignored when < 0). Errors: Cancelled (stop_fd
// became readable), DeadlineExceeded, Unavailable (peer closed or I/O error).
absl::StatusOr<Datagram> RecvDatagram(int fd, int stop_fd, absl::Duration timeout);

// SendDatagram sends `bytes` as one datagram, with `pass_fd` as SCM_RIGHTS
// when >= 0. Never raises SIGPIPE. Errors as RecvDatagram, and
// InvalidArgument for bytes over kMaxMessageSize.
absl::Status SendDatagram(int fd, absl::string_view bytes, int pass_fd, int stop_fd,
                          absl::Duration timeout);

// WaitOn polls `fd` for `events` and `stop_fd` for readability until
// `timeout`. OK when `fd` is ready; Cancelled; DeadlineExceeded.
absl::Status WaitOn(int fd, short events, int stop_fd, absl::Duration timeout);

// SleepUnlessStopped waits `d`; returns false when `stop_fd` fired first.
bool SleepUnlessStopped(int stop_fd, absl::Duration d);

// MakeEventFd returns a close-on-exec, non-blocking eventfd.
absl::StatusOr<UniqueFd> MakeEventFd();
// Signal / Drain an eventfd.
void SignalEventFd(int fd);
void DrainEventFd(int fd);

}  // namespace ambient::netns::zds

#endif  // AMBIENT_LIB_NETNS_ZDS_TRANSPORT_H_
