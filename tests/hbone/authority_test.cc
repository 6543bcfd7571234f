#include "ambient/hbone/authority.h"

#include <gtest/gtest.h>

namespace ambient::hbone {
namespace {

TEST(AuthorityTest, AcceptsTheThreeShapesZtunnelSends) {
  auto v4 = ParseAuthority("10.244.0.42:9080");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->kind, Authority::Kind::kIpv4);
  EXPECT_EQ(v4->host, "10.244.0.42");
  EXPECT_EQ(v4->port, 9080);
  EXPECT_EQ(v4->ToString(), "10.244.0.42:9080");

  auto v6 = ParseAuthority("[2001:db8::1]:15008");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->kind, Authority::Kind::kIpv6);
  EXPECT_EQ(v6->host, "2001:db8::1");
  EXPECT_EQ(v6->port, 15008);
  EXPECT_EQ(v6->ToString(), "[2001:db8::1]:15008");

  auto name = ParseAuthority("echo.default.svc.cluster.local:80");
  ASSERT_TRUE(name.ok()) << name.status();
  EXPECT_EQ(name->kind, Authority::Kind::kHostname);
  EXPECT_EQ(name->host, "echo.default.svc.cluster.local");
  EXPECT_EQ(name->port, 80);
}

TEST(AuthorityTest, RejectsEverythingElseWithAReason) {
  const char* bad[] = {
      "",                   // empty
      "10.0.0.1",           // no port
      "10.0.0.1:",          // empty port
      "10.0.0.1:0",         // port 0
      "10.0.0.1:65536",     // too big
      "10.0.0.1:+80",       // sign
      "10.0.0.1:8o",        // not digits
      "2001:db8::1:80",     // v6 without brackets
      "[2001:db8::1]",      // no port
      "[2001:db8::1]80",    // no colon
      "[not-v6]:80",        // bad v6
      "[10.0.0.1]:80",      // v4 in brackets
      "[]:80",              // empty
      ":80",                // empty host
      "user@host:80",       // userinfo
      "host/path:80",       // path characters
      "999.1.1.1:80",       // digits that are no IPv4
      "a..b:80",            // empty label
      "host name:80",       // space
      "[fe80::1%eth0]:80",  // zone id
  };
  for (const char* text : bad) {
    auto a = ParseAuthority(text);
    EXPECT_FALSE(a.ok()) << "accepted: " << text;
    if (!a.ok()) {
      EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(a.status().message().find("bad :authority"), absl::string_view::npos);
    }
  }
  std::string long_label(64, 'a');
  EXPECT_FALSE(ParseAuthority(long_label + ".example:80").ok());
  std::string embedded_nul("10.0.0.1\0:80", 12);
  EXPECT_FALSE(ParseAuthority(embedded_nul).ok());
}

}  // namespace
}  // namespace ambient::hbone
