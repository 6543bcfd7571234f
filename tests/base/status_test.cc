#include "ambient/base/status.h"

#include <gtest/gtest.h>

namespace ambient {
namespace {

TEST(StatusDetail, RoundTripsThroughPayload) {
  absl::Status s = WithDetail(absl::PermissionDeniedError("no"), 7);
  EXPECT_EQ(DetailOf(s), 7);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "no");
}

TEST(StatusDetail, OkStaysOkAndHasNoDetail) {
  EXPECT_TRUE(WithDetail(absl::OkStatus(), 3).ok());
  EXPECT_EQ(DetailOf(absl::OkStatus()), 0);
  EXPECT_EQ(DetailOf(absl::InternalError("x")), 0);
}

TEST(StatusPrefixed, KeepsCodeAndDetail) {
  absl::Status s = Prefixed("loading bundle", WithDetail(absl::InvalidArgumentError("bad PEM"), 4));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "loading bundle: bad PEM");
  EXPECT_EQ(DetailOf(s), 4);
  EXPECT_TRUE(Prefixed("x", absl::OkStatus()).ok());
}

}  // namespace
}  // namespace ambient
