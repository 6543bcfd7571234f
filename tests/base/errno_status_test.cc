#include "ambient/base/errno_status.h"

#include <cerrno>

#include "gtest/gtest.h"

namespace ambient {
namespace {

TEST(ErrnoStatus, MessageNamesTheCallAndTheKernelsWords) {
  absl::Status s = ErrnoStatus(ENOENT, "open netns /var/run/netns/x");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "open netns /var/run/netns/x: No such file or directory");
}

TEST(ErrnoStatus, ZeroIsOk) { EXPECT_TRUE(ErrnoStatus(0, "anything").ok()); }

TEST(ErrnoStatus, FollowsAbseilOutsideTheOverrides) {
  for (int err : {EPERM,     EACCES,     ENOENT, ESRCH,   EEXIST,       EINVAL,     ENOMEM,
                  EMFILE,    ENOBUFS,    EAGAIN, EINTR,   ECONNREFUSED, ECONNRESET, EPIPE,
                  ETIMEDOUT, EOPNOTSUPP, EBADF,  ENOTDIR, EBUSY,        EIO}) {
    EXPECT_EQ(ErrnoStatus(err, "x").code(), absl::ErrnoToStatusCode(err)) << err;
  }
  EXPECT_EQ(ErrnoStatusCode(EACCES), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatusCode(ENOMEM), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoStatusCode(ECONNREFUSED), absl::StatusCode::kUnavailable);
}

// A port someone holds is a clash callers report as AlreadyExists; an address
// that is not there (::1 with IPv6 off) is Unavailable, which the pod
// listeners treat as "skip IPv6"; an unknown address family is the caller's
// bad argument. Abseil says FailedPrecondition, AlreadyExists and
// Unimplemented for these three.
TEST(ErrnoStatus, SocketOverrides) {
  EXPECT_EQ(ErrnoStatus(EADDRINUSE, "bind").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ErrnoStatus(EADDRNOTAVAIL, "bind").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoStatus(EAFNOSUPPORT, "socket").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrnoStatus(EADDRINUSE, "bind [::]:15008").message(),
            "bind [::]:15008: Address already in use");
}

}  // namespace
}  // namespace ambient
