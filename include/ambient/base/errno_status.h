// ambient/base/errno_status.h: the one way a failed system call becomes an
// absl::Status.
//
// Layers that call the kernel report a failed call with ErrnoStatus, so the
// same errno gives the same canonical code in every layer and, at the C
// boundary, the same ambient error code.
#ifndef AMBIENT_BASE_ERRNO_STATUS_H_
#define AMBIENT_BASE_ERRNO_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ambient {

// ErrnoStatusCode returns the canonical code for the errno value `err`:
// absl::ErrnoToStatusCode's mapping, with three overrides that describe
// sockets the way this library's callers act on them:
//   EADDRINUSE    -> AlreadyExists (absl: FailedPrecondition). A port someone
//                    else holds is "already exists"; tests and hosts rely on it.
//   EADDRNOTAVAIL -> Unavailable (absl: AlreadyExists). The address is not
//                    there (for example ::1 on a pod whose IPv6 is disabled),
//                    which callers treat as "not usable here", not as a clash.
//   EAFNOSUPPORT  -> InvalidArgument (absl: Unimplemented). The address
//                    family is one the caller passed in (a socket factory
//                    asked for family 12345), not a missing feature.
// 0 gives OK. Unlisted values give Unknown.
absl::StatusCode ErrnoStatusCode(int err);

// ErrnoStatus returns a status with ErrnoStatusCode(err) and the message
// "`what`: <strerror(err)>", for example "bind [::]:15008: Address already in
// use". `err` is an errno value (pass errno right after the failed call, before
// anything else can change it); 0 gives an OK status. Thread-safe.
absl::Status ErrnoStatus(int err, absl::string_view what);

}  // namespace ambient

#endif  // AMBIENT_BASE_ERRNO_STATUS_H_
