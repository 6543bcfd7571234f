#include "ambient/base/errno_status.h"

#include <cerrno>

namespace ambient {

absl::StatusCode ErrnoStatusCode(int err) {
  switch (err) {
    case EADDRINUSE:
      return absl::StatusCode::kAlreadyExists;
    case EADDRNOTAVAIL:
      return absl::StatusCode::kUnavailable;
    case EAFNOSUPPORT:
      return absl::StatusCode::kInvalidArgument;
    default:
      return absl::ErrnoToStatusCode(err);
  }
}

absl::Status ErrnoStatus(int err, absl::string_view what) {
  if (err == 0) return absl::OkStatus();
  // absl::ErrnoToStatus formats "<what>: <strerror>" (thread-safely); only the
  // code is ours.
  absl::Status from_absl = absl::ErrnoToStatus(err, what);
  return absl::Status(ErrnoStatusCode(err), from_absl.message());
}

}  // namespace ambient
