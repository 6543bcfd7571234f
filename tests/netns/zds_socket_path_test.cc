// The one ZDS socket path rule both ends (and the C ABI setters) apply.
#include <gtest/gtest.h>
#include <sys/un.h>

#include <string>

#include "ambient/netns/zds.h"

namespace ambient::netns::zds {
namespace {

using namespace std::string_literals;

TEST(ZdsSocketPath, OneToTheSunPathLessItsNul) {
  EXPECT_EQ(kMaxSocketPathLength + 1, sizeof(sockaddr_un::sun_path));
  EXPECT_TRUE(CheckSocketPath(kDefaultSocketPath).ok());
  EXPECT_TRUE(CheckSocketPath(std::string(kMaxSocketPathLength, 'x')).ok());
  absl::Status long_path = CheckSocketPath(std::string(kMaxSocketPathLength + 1, 'x'));
  EXPECT_EQ(long_path.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(long_path.message(), "ZDS socket path must be 1-107 bytes");
  EXPECT_EQ(CheckSocketPath("").message(), "ZDS socket path must be 1-107 bytes");
  absl::Status nul = CheckSocketPath("/run/a\0b.sock"s);
  EXPECT_EQ(nul.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(nul.message(), "ZDS socket path contains a NUL byte");
}

}  // namespace
}  // namespace ambient::netns::zds
