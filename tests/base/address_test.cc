// Tests for ambient::IpAddress and ambient::SocketAddress: every parse rule
// (Go's net.SplitHostPort and ztunnel's bracket rules), the error texts, the
// sockaddr view, ordering and hashing.
#include "ambient/base/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ambient {
namespace {

using ::testing::HasSubstr;

IpAddress Ip(const char* s) { return *IpAddress::Parse(s); }
SocketAddress Addr(const char* s) { return *SocketAddress::Parse(s); }

TEST(IpAddress, ParsesBareAddressesOfBothFamilies) {
  EXPECT_EQ(Ip("198.18.0.1").family(), AF_INET);
  EXPECT_EQ(Ip("198.18.0.1").bytes(), std::string("\xc6\x12\x00\x01", 4));
  EXPECT_EQ(Ip("2001:db8::1").family(), AF_INET6);
  EXPECT_EQ(Ip("2001:db8::1").bytes().size(), 16u);
  // Printing is canonical (RFC 5952): leading zeros and upper case go away.
  EXPECT_EQ(Ip("2001:0DB8:0:0::01").ToString(), "2001:db8::1");
  EXPECT_EQ(Ip("::ffff:198.18.0.1").ToString(), "::ffff:198.18.0.1");
}

TEST(IpAddress, RejectsBracketsZonesPortsAndJunkNamingTheText) {
  for (const char* bad :
       {"", "[2001:db8::1]", "fe80::1%eth0", "198.18.0.1:80", "198.18.0", "198.18.0.256",
        "01.2.3.4", "host.example", " 198.18.0.1", "2001:db8::1::2", "::ffff:1.2.3"}) {
    absl::StatusOr<IpAddress> ip = IpAddress::Parse(bad);
    ASSERT_FALSE(ip.ok()) << bad;
    EXPECT_EQ(ip.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ip.status().message(), absl::StrCat("invalid IP address \"", bad, "\""));
  }
  // A NUL inside the text is not a terminator: "1.2.3.4\0x" is not 1.2.3.4.
  EXPECT_EQ(IpAddress::Parse(absl::string_view("1.2.3.4\0x", 9)).status().message(),
            "invalid IP address \"1.2.3.4\\x00x\"");
  EXPECT_FALSE(IpAddress::Parse(std::string(100, '1')).ok());
}

TEST(IpAddress, FromBytesTakesFourOrSixteen) {
  EXPECT_EQ(IpAddress::FromBytes(std::string("\x7f\0\0\x01", 4))->ToString(), "127.0.0.1");
  EXPECT_EQ(IpAddress::FromBytes(std::string(16, '\0'))->ToString(), "::");
  EXPECT_EQ(IpAddress::FromBytes("abc").status().message(),
            "an IP address is 4 or 16 bytes, not 3");
  EXPECT_EQ(IpAddress::V4(0xc6120001).ToString(), "198.18.0.1");
}

TEST(IpAddress, MappedLoopbackAndUnspecified) {
  EXPECT_TRUE(Ip("::ffff:198.18.0.1").IsV4Mapped());
  EXPECT_EQ(Ip("::ffff:198.18.0.1").Unmapped(), Ip("198.18.0.1"));
  EXPECT_FALSE(Ip("198.18.0.1").IsV4Mapped());
  EXPECT_FALSE(Ip("2001:db8::ffff:c612:1").IsV4Mapped());
  EXPECT_EQ(Ip("2001:db8::1").Unmapped(), Ip("2001:db8::1"));
  EXPECT_TRUE(Ip("127.0.0.1").IsLoopback());
  EXPECT_TRUE(Ip("127.9.9.9").IsLoopback());
  EXPECT_TRUE(Ip("::1").IsLoopback());
  EXPECT_FALSE(Ip("::2").IsLoopback());
  EXPECT_TRUE(Ip("0.0.0.0").IsUnspecified());
  EXPECT_TRUE(Ip("::").IsUnspecified());
  EXPECT_FALSE(Ip("::1").IsUnspecified());
  EXPECT_EQ(IpAddress::Loopback(AF_INET6).ToString(), "::1");
  EXPECT_EQ(IpAddress::Any(AF_INET).ToString(), "0.0.0.0");
}

TEST(IpAddress, OrdersV4FirstThenByBytesAndHashes) {
  EXPECT_LT(Ip("255.255.255.255"), Ip("::"));
  EXPECT_LT(Ip("10.0.0.2"), Ip("10.0.0.10"));
  EXPECT_FALSE(Ip("10.0.0.1") < Ip("10.0.0.1"));
  // 0.0.0.0 and :: have the same (zero) bytes but are different addresses.
  EXPECT_NE(Ip("0.0.0.0"), Ip("::"));
  EXPECT_TRUE(absl::VerifyTypeImplementsAbslHashCorrectly(
      {Ip("0.0.0.0"), Ip("::"), Ip("198.18.0.1"), Ip("2001:db8::1"), Ip("::ffff:198.18.0.1")}));
}

TEST(SocketAddress, ParsesHostPortWithGoAndZtunnelBracketRules) {
  SocketAddress v4 = Addr("198.18.0.1:80");
  EXPECT_EQ(v4.family(), AF_INET);
  EXPECT_EQ(v4.ip(), Ip("198.18.0.1"));
  EXPECT_EQ(v4.port(), 80);
  SocketAddress v6 = Addr("[2001:db8::1]:15008");
  EXPECT_EQ(v6.family(), AF_INET6);
  EXPECT_EQ(v6.ip(), Ip("2001:db8::1"));
  EXPECT_EQ(v6.port(), 15008);
  EXPECT_EQ(Addr("0.0.0.0:0").port(), 0);
  EXPECT_EQ(Addr("1.2.3.4:65535").port(), 65535);
  EXPECT_EQ(Addr("[::]:1").ToString(), "[::]:1");
}

TEST(SocketAddress, EveryParseRuleHasItsError) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"", "invalid address \"\": want IPv4:PORT or [IPv6]:PORT"},
           {"198.18.0.1", "invalid address \"198.18.0.1\": want IPv4:PORT or [IPv6]:PORT"},
           // IPv6 must be bracketed.
           {"2001:db8::1:80", "invalid address \"2001:db8::1:80\": want IPv4:PORT or [IPv6]:PORT"},
           {"[2001:db8::1", "invalid address \"[2001:db8::1\": want [IPv6]:PORT"},
           {"[2001:db8::1]", "invalid address \"[2001:db8::1]\": want [IPv6]:PORT"},
           {"[2001:db8::1]80", "invalid address \"[2001:db8::1]80\": want [IPv6]:PORT"},
           // Brackets are only for IPv6.
           {"[198.18.0.1]:80", "invalid address \"[198.18.0.1]:80\": brackets need IPv6"},
           {"[]:80", "invalid address \"[]:80\": brackets need IPv6"},
           {"198.18.0.1:", "invalid port in \"198.18.0.1:\": want 0-65535"},
           {"198.18.0.1:65536", "invalid port in \"198.18.0.1:65536\": want 0-65535"},
           {"198.18.0.1:-1", "invalid port in \"198.18.0.1:-1\": want 0-65535"},
           {"198.18.0.1:+1", "invalid port in \"198.18.0.1:+1\": want 0-65535"},
           {"198.18.0.1:http", "invalid port in \"198.18.0.1:http\": want 0-65535"},
           {"198.18.0.1:000080", "invalid port in \"198.18.0.1:000080\": want 0-65535"},
           {"[2001:db8::1]:x", "invalid port in \"[2001:db8::1]:x\": want 0-65535"},
           {"[2001:db8::1]:80:1", "invalid port in \"[2001:db8::1]:80:1\": want 0-65535"},
           // A host name is not an address: the library never resolves names.
           {"localhost:80", "invalid IP address \"localhost\""},
           {":80", "invalid IP address \"\""},
           {"[fe80::1%eth0]:80", "invalid IP address \"fe80::1%eth0\""},
           {"[::ffff:1.2.3]:80", "invalid IP address \"::ffff:1.2.3\""},
       }) {
    absl::StatusOr<SocketAddress> a = SocketAddress::Parse(c.text);
    ASSERT_FALSE(a.ok()) << c.text;
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_EQ(a.status().message(), c.message) << c.text;
  }
  // Control bytes are escaped in the message, never copied raw into logs.
  EXPECT_THAT(SocketAddress::Parse("\n1.2.3.4").status().message(), HasSubstr("\\n1.2.3.4"));
}

TEST(SocketAddress, PrintsWhatItParses) {
  for (const char* text :
       {"198.18.0.1:80", "[2001:db8::1]:80", "[::ffff:198.18.0.1]:7", "0.0.0.0:0", "[::]:65535"}) {
    EXPECT_EQ(Addr(text).ToString(), text);
  }
  EXPECT_EQ(Addr("[2001:DB8:0::1]:080").ToString(), "[2001:db8::1]:80");
  EXPECT_EQ(Addr("[2001:db8::1]:80").IpString(), "2001:db8::1");
  EXPECT_EQ(SocketAddress().ToString(), "");
  EXPECT_EQ(SocketAddress().IpString(), "");
  EXPECT_TRUE(SocketAddress().empty());
  EXPECT_EQ(SocketAddress().size(), 0u);
}

TEST(SocketAddress, ParseIpAnyLoopbackAndSetPort) {
  EXPECT_EQ(SocketAddress::ParseIp("2001:db8::1", 9)->ToString(), "[2001:db8::1]:9");
  EXPECT_EQ(SocketAddress::ParseIp("198.18.0.1")->ToString(), "198.18.0.1:0");
  EXPECT_EQ(SocketAddress::ParseIp("[2001:db8::1]").status().message(),
            "invalid IP address \"[2001:db8::1]\"");
  EXPECT_EQ(SocketAddress::Any(AF_INET, 1).ToString(), "0.0.0.0:1");
  EXPECT_EQ(SocketAddress::Any(AF_INET6, 2).ToString(), "[::]:2");
  EXPECT_EQ(SocketAddress::Loopback(AF_INET, 3).ToString(), "127.0.0.1:3");
  EXPECT_EQ(SocketAddress::Loopback(AF_INET6, 4).ToString(), "[::1]:4");
  SocketAddress a = Addr("[2001:db8::1]:80");
  a.set_port(443);
  EXPECT_EQ(a.ToString(), "[2001:db8::1]:443");
  SocketAddress empty;
  empty.set_port(1);
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(SocketAddress(Ip("198.18.0.1"), 5).ToString(), "198.18.0.1:5");
}

TEST(SocketAddress, MappedAddressesUnmapToPlainIpv4) {
  SocketAddress m = Addr("[::ffff:198.18.0.1]:7");
  EXPECT_TRUE(m.IsV4Mapped());
  EXPECT_EQ(m.Unmapped(), Addr("198.18.0.1:7"));
  EXPECT_NE(m, Addr("198.18.0.1:7"));
  EXPECT_EQ(Addr("[2001:db8::1]:7").Unmapped(), Addr("[2001:db8::1]:7"));
}

TEST(SocketAddress, SockaddrViewRoundTripsThroughTheKernel) {
  for (int family : {AF_INET, AF_INET6}) {
    int fd = socket(family, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    SocketAddress want = SocketAddress::Loopback(family, 0);
    if (bind(fd, want.sockaddr_ptr(), want.size()) != 0) {
      close(fd);
      if (family == AF_INET6) GTEST_SKIP() << "no IPv6 loopback here";
      FAIL() << "bind 127.0.0.1";
    }
    SocketAddress got;
    socklen_t len = SocketAddress::capacity();
    ASSERT_EQ(getsockname(fd, got.mutable_sockaddr(), &len), 0);
    close(fd);
    EXPECT_EQ(len, got.size());
    EXPECT_TRUE(got.SameIp(want));
    EXPECT_NE(got.port(), 0);
    absl::StatusOr<SocketAddress> copy = SocketAddress::FromSockaddr(got.sockaddr_ptr(), len);
    ASSERT_TRUE(copy.ok());
    EXPECT_EQ(*copy, got);
  }
}

TEST(SocketAddress, FromSockaddrRefusesOtherFamiliesAndShortLengths) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  EXPECT_FALSE(SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&in), 4).ok());
  EXPECT_TRUE(SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&in), sizeof(in)).ok());
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  EXPECT_FALSE(SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&in6), sizeof(in)).ok());
  sockaddr un{};
  un.sa_family = AF_UNIX;
  EXPECT_EQ(SocketAddress::FromSockaddr(&un, sizeof(un)).status().message(),
            "not an IPv4 or IPv6 socket address");
  EXPECT_FALSE(SocketAddress::FromSockaddr(nullptr, 0).ok());
}

TEST(SocketAddress, OrdersAndHashesByIpThenPort) {
  EXPECT_LT(SocketAddress(), Addr("0.0.0.0:0"));
  EXPECT_LT(Addr("10.0.0.1:90"), Addr("10.0.0.2:80"));
  EXPECT_LT(Addr("10.0.0.1:80"), Addr("10.0.0.1:90"));
  EXPECT_LT(Addr("255.255.255.255:9"), Addr("[::]:0"));
  EXPECT_FALSE(Addr("10.0.0.1:80") < Addr("10.0.0.1:80"));
  EXPECT_TRUE(absl::VerifyTypeImplementsAbslHashCorrectly(
      {SocketAddress(), Addr("0.0.0.0:0"), Addr("[::]:0"), Addr("198.18.0.1:80"),
       Addr("198.18.0.1:81"), Addr("[2001:db8::1]:80")}));
  absl::flat_hash_set<SocketAddress> set = {Addr("198.18.0.1:80"), Addr("198.18.0.1:80")};
  EXPECT_EQ(set.size(), 1u);
}

}  // namespace
}  // namespace ambient
