#include "capi/error.h"

#include <gtest/gtest.h>

#include <new>
#include <stdexcept>

#include "ambient/base/status.h"

namespace {

TEST(CapiError, OkIsNull) { EXPECT_EQ(ambient::capi::ToError(absl::OkStatus()), nullptr); }

TEST(CapiError, CarriesCodeMessageAndDetail) {
  ambient_error* err = ambient::capi::ToError(
      ambient::WithDetail(absl::UnauthenticatedError("peer has no URI SAN"), 3));
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_UNAUTHENTICATED);
  EXPECT_STREQ(ambient_error_message(err), "peer has no URI SAN");
  EXPECT_EQ(ambient_error_detail(err), 3);
  ambient_error_free(err);
}

TEST(CapiError, GuardTurnsExceptionsIntoErrors) {
  ambient_error* err = ambient::capi::Guard([]() -> absl::Status { throw std::bad_alloc(); });
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_RESOURCE_EXHAUSTED);
  ambient_error_free(err);
  err = ambient::capi::Guard([]() -> absl::Status { throw std::runtime_error("boom"); });
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INTERNAL);
  ambient_error_free(err);
  EXPECT_EQ(ambient::capi::GuardCode([]() -> int { throw std::bad_alloc(); }),
            AMBIENT_ERR_RESOURCE_EXHAUSTED);
  EXPECT_EQ(ambient::capi::GuardCode([] { return 5; }), 5);
}

TEST(CapiError, EveryCanonicalCodeMapsToANamedCode) {
  for (int c = 1; c <= 16; ++c) {
    ambient_code code = ambient::capi::CodeOf(static_cast<absl::StatusCode>(c));
    EXPECT_LT(code, 0);
    EXPECT_STRNE(ambient_strerror(code), "unknown error code") << c;
  }
}

}  // namespace
