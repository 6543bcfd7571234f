#include "ambient/base/json_nesting.h"

#include <gtest/gtest.h>

#include <string>

namespace ambient {
namespace {

TEST(JsonNesting, AcceptsUpToTheLimit) {
  EXPECT_TRUE(CheckJsonNesting(R"({"a":[{"b":[1]}]})", 4, "doc").ok());
  EXPECT_TRUE(CheckJsonNesting("", 1, "doc").ok());
}

TEST(JsonNesting, RejectsDeeperAndSaysWhere) {
  absl::Status s = CheckJsonNesting(R"({"a":[{"b":[1]}]})", 3, "policy JSON");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "policy JSON is not valid: nested deeper than 3 levels (at offset 11)");
  EXPECT_FALSE(CheckJsonNesting(std::string(100000, '['), 32, "doc").ok());
}

TEST(JsonNesting, BracketsInStringsDoNotCount) {
  EXPECT_TRUE(CheckJsonNesting(R"({"a":"[[[[{{{{"})", 1, "doc").ok());
  // An escaped quote does not end the string.
  EXPECT_TRUE(CheckJsonNesting(R"({"a":"\"[[[["})", 1, "doc").ok());
  EXPECT_FALSE(CheckJsonNesting(R"({"a":"\\",[[[1]]]})", 2, "doc").ok());
}

}  // namespace
}  // namespace ambient
