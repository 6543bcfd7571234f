#include "ambient/base/runtime_check.h"

#include <gtest/gtest.h>

namespace ambient {
namespace {

// This test binary links only BoringSSL, so the check must pass; the
// OpenSSL-clash case is covered by tests/capi/openssl_clash_test.c, which
// loads OpenSSL 3 into the process first.
TEST(RuntimeCheck, BoringSslIsBound) { EXPECT_TRUE(EnsureBoringSsl().ok()); }

}  // namespace
}  // namespace ambient
