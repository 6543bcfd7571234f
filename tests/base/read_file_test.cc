#include "ambient/base/read_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace ambient {
namespace {

std::string TempPath(const char* name) {
  return std::string(::testing::TempDir()) + "/read_file_test_" + name + "_" +
         std::to_string(getpid());
}

TEST(ReadFileBounded, ReadsAFileUpToTheLimit) {
  std::string path = TempPath("ok");
  {
    std::ofstream out(path, std::ios::binary);
    out << std::string(1000, 'x');
  }
  absl::StatusOr<std::string> got = ReadFileBounded(path, 1000, "test");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size(), 1000u);
  absl::StatusOr<std::string> over = ReadFileBounded(path, 999, "bundle");
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(over.status().message(), "bundle file " + path + " is larger than 999 bytes");
  std::remove(path.c_str());
}

TEST(ReadFileBounded, EmptyFileIsEmpty) {
  std::string path = TempPath("empty");
  { std::ofstream out(path); }
  absl::StatusOr<std::string> got = ReadFileBounded(path, 10, "test");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->empty());
  std::remove(path.c_str());
}

// /dev/zero never ends: the read stops at the limit instead of growing until
// the kernel kills the process (issue 17, finding 3).
TEST(ReadFileBounded, EndlessDeviceStopsAtTheLimit) {
  absl::StatusOr<std::string> got = ReadFileBounded("/dev/zero", kMaxFileSize, "certificate");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(got.status().message(), "certificate file /dev/zero is larger than 16777216 bytes");
}

TEST(ReadFileBounded, ErrorsSayWhatAndWhere) {
  absl::StatusOr<std::string> missing = ReadFileBounded("/nonexistent/x.pem", 10, "key");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(),
            "cannot read key file /nonexistent/x.pem: No such file or directory");
  absl::StatusOr<std::string> dir = ReadFileBounded("/", 10, "config");
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dir.status().message(), "config file / is a directory");
}

}  // namespace
}  // namespace ambient
