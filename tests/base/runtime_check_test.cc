#include "ambient/base/runtime_check.h"

#include <gtest/gtest.h>

namespace ambient {
namespace {

// This test binary links only the TLS library ambient was built with, so the
// check must pass; the
// OpenSSL-clash case is covered by tests/capi/openssl_clash_test.c, which
// loads OpenSSL 3 into the process first.
TEST(RuntimeCheck, BuiltLibraryIsBound) {
  EXPECT_TRUE(EnsureTlsBackend().ok()) << EnsureTlsBackend();
  EXPECT_TRUE(TlsBackend() == "boringssl" || TlsBackend() == "openssl");
  EXPECT_EQ(BoundTlsLibrary() == "BoringSSL", TlsBackend() == "boringssl") << BoundTlsLibrary();
}

}  // namespace
}  // namespace ambient
