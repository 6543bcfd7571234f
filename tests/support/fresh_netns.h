// Test support: a throwaway network namespace for a privileged test. It is
// unnamed, so the kernel removes it (rules, sets, sockets and all) when the
// last handle closes, even when the test fails half-way. Its loopback device
// is up, as a pod's is.
#ifndef AMBIENT_TESTS_SUPPORT_FRESH_NETNS_H_
#define AMBIENT_TESTS_SUPPORT_FRESH_NETNS_H_

#include <gtest/gtest.h>

#include <utility>

#include "absl/status/statusor.h"
#include "ambient/netns/netns.h"

namespace ambient::test_support {

// FreshNetns returns a new namespace, or an empty handle (with a test
// failure) when one cannot be made.
inline netns::Netns FreshNetns() {
  absl::StatusOr<netns::Netns> ns = netns::Netns::CreateUnnamed();
  EXPECT_TRUE(ns.ok()) << ns.status();
  if (!ns.ok()) return netns::Netns();
  absl::Status up = netns::BringUpLoopback(*ns);
  EXPECT_TRUE(up.ok()) << up;
  return *std::move(ns);
}

}  // namespace ambient::test_support

#endif  // AMBIENT_TESTS_SUPPORT_FRESH_NETNS_H_
