// Internal to lib/netns: turning an errno into an absl::Status.
#ifndef AMBIENT_LIB_NETNS_ERRNO_STATUS_H_
#define AMBIENT_LIB_NETNS_ERRNO_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ambient::netns {

// ErrnoStatus returns a status whose code fits `err` (ENOENT -> NotFound,
// EPERM/EACCES -> PermissionDenied, EMFILE/ENFILE/ENOMEM/ENOBUFS ->
// ResourceExhausted, EADDRINUSE -> AlreadyExists, EINVAL... -> InvalidArgument,
// else Unavailable/Internal) and the message "`what`: <strerror>".
absl::Status ErrnoStatus(int err, absl::string_view what);

}  // namespace ambient::netns

#endif  // AMBIENT_LIB_NETNS_ERRNO_STATUS_H_
