#include "ambient/authz/ip.h"

#include <gtest/gtest.h>

namespace ambient::authz {
namespace {

IpAddress Ip(const char* s) { return *IpAddress::Parse(s); }

TEST(IpAddress, ParsesBothFamiliesAndRejectsJunk) {
  EXPECT_TRUE(Ip("198.18.0.1").is_v4());
  EXPECT_EQ(Ip("198.18.0.1").ToString(), "198.18.0.1");
  EXPECT_FALSE(Ip("2001:db8::1").is_v4());
  EXPECT_EQ(Ip("2001:db8::1").ToString(), "2001:db8::1");
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "[::1]", "::1%eth0", "x", "1.2.3.4 "}) {
    EXPECT_FALSE(IpAddress::Parse(bad).ok()) << bad;
  }
  EXPECT_FALSE(IpAddress::FromBytes("abc").ok());
}

TEST(IpPrefix, ContainsByPrefixBitsOnly) {
  auto p = *IpPrefix::Parse("198.18.0.0/15");
  EXPECT_TRUE(p.Contains(Ip("198.18.0.1")));
  EXPECT_TRUE(p.Contains(Ip("198.19.255.255")));
  EXPECT_FALSE(p.Contains(Ip("198.20.0.0")));
  EXPECT_FALSE(p.Contains(Ip("2001:db8::1")));  // never across families
  auto v6 = *IpPrefix::Parse("2001:db8::/32");
  EXPECT_TRUE(v6.Contains(Ip("2001:db8:ffff::1")));
  EXPECT_FALSE(v6.Contains(Ip("2001:db9::1")));
  EXPECT_FALSE(v6.Contains(Ip("198.18.0.1")));
  auto all = *IpPrefix::Parse("0.0.0.0/0");
  EXPECT_TRUE(all.Contains(Ip("203.0.113.9")));
  auto host = *IpPrefix::Parse("198.18.0.7");
  EXPECT_EQ(host.length(), 32);
  EXPECT_TRUE(host.Contains(Ip("198.18.0.7")));
  EXPECT_FALSE(host.Contains(Ip("198.18.0.6")));
}

TEST(IpPrefix, RejectsBadLengthsAndHostBits) {
  EXPECT_FALSE(IpPrefix::Parse("198.18.0.0/33").ok());
  EXPECT_FALSE(IpPrefix::Parse("198.18.0.0/").ok());
  EXPECT_FALSE(IpPrefix::Parse("198.18.0.0/-1").ok());
  EXPECT_FALSE(IpPrefix::Parse("2001:db8::/129").ok());
  auto hostbits = IpPrefix::Parse("198.18.0.1/15");
  ASSERT_FALSE(hostbits.ok());
  EXPECT_NE(hostbits.status().message().find("host bits"), std::string::npos);
  EXPECT_FALSE(IpPrefix::FromBytes(std::string(5, '\0'), 8).ok());
}

}  // namespace
}  // namespace ambient::authz
