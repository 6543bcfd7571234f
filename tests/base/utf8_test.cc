// ambient/base/utf8.h: RFC 3629's well-formed UTF-8, and scrubbing.
#include "ambient/base/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace ambient {
namespace {

TEST(Utf8Test, WellFormedTextPasses) {
  EXPECT_TRUE(IsUtf8(""));
  EXPECT_TRUE(IsUtf8("spiffe://cluster.local/ns/default/sa/web"));
  EXPECT_TRUE(IsUtf8("caf\xC3\xA9"));           // U+00E9
  EXPECT_TRUE(IsUtf8("\xE2\x82\xAC"));          // U+20AC
  EXPECT_TRUE(IsUtf8("\xF4\x8F\xBF\xBF"));      // U+10FFFF
  EXPECT_TRUE(IsUtf8(std::string("a\0b", 3)));  // NUL is a code point
}

TEST(Utf8Test, MalformedTextIsFoundAtItsFirstBadByte) {
  EXPECT_EQ(Utf8Prefix("ab\xFF"), 2u);            // never valid
  EXPECT_EQ(Utf8Prefix("ab\xC0\xAF"), 2u);        // overlong '/'
  EXPECT_EQ(Utf8Prefix("\xED\xA0\x80"), 0u);      // surrogate U+D800
  EXPECT_EQ(Utf8Prefix("\xF4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(Utf8Prefix("x\xE2\x82"), 1u);         // truncated
  EXPECT_EQ(Utf8Prefix("\xC3\x28"), 0u);          // bad continuation
  EXPECT_FALSE(IsUtf8("\x80"));
}

TEST(Utf8Test, ScrubReplacesEachBadByteAndKeepsTheRest) {
  EXPECT_EQ(ScrubUtf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(ScrubUtf8("a\xFF"
                      "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(ScrubUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(IsUtf8(ScrubUtf8("\xF4\x90\x80\x80 \xED\xA0\x80 \xE2\x82")));
}

}  // namespace
}  // namespace ambient
