// Test support: privileged tests need root. Outside CI they skip with a loud
// message; with AMBIENT_REQUIRE_PRIVILEGED=1 (set by `make test` when running as
// root, and by CI) a missing privilege is a failure, never a silent pass.
#ifndef AMBIENT_TESTS_SUPPORT_PRIVILEGED_H_
#define AMBIENT_TESTS_SUPPORT_PRIVILEGED_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#define AMBIENT_REQUIRE_ROOT()                                                          \
  do {                                                                                  \
    if (geteuid() != 0) {                                                               \
      const char* require = std::getenv("AMBIENT_REQUIRE_PRIVILEGED");                  \
      if (require != nullptr && std::strcmp(require, "1") == 0) {                       \
        FAIL() << "privileged test needs root and AMBIENT_REQUIRE_PRIVILEGED=1 is set"; \
      }                                                                                 \
      GTEST_SKIP() << "*** NOT RUN: privileged test needs root (run as root to test "  \
                      "namespaces and packet filters for real) ***";                    \
    }                                                                                   \
  } while (0)

#endif  // AMBIENT_TESTS_SUPPORT_PRIVILEGED_H_
