// CONFIG flag parsing: every flag of DESIGN.md, and clear errors that change
// nothing for bad input.
#include "ambient/redirect/config.h"

#include <gtest/gtest.h>

namespace ambient::redirect {
namespace {

absl::StatusOr<Config> Parse(std::vector<std::string> args) { return ParseFlags(args); }

TEST(ParseFlags, DefaultsAreIstioProductionDefaults) {
  absl::StatusOr<Config> c = Parse({});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->backend, Backend::kIptables);
  EXPECT_FALSE(c->host);
  EXPECT_FALSE(c->ipv6);
  EXPECT_TRUE(c->EffectiveDnsCapture());
  EXPECT_EQ(c->probe_snat_v4, "169.254.7.127");
  EXPECT_EQ(c->probe_snat_v6, "fd16:9254:7127:1337:ffff:ffff:ffff:ffff");
}

TEST(ParseFlags, EveryFlag) {
  absl::StatusOr<Config> c =
      Parse({"--backend=nftables", "--host", "--ipv6", "--dns-capture", "off", "--pod-dns-capture=on",
             "--bypass-inbound", "--reroute-interface", "eth1", "--reroute-interface=net1",
             "--probe-snat-v4", "10.0.0.1", "--probe-snat-v6", "2001:DB8::1", "--kubelet-uid", "0"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->backend, Backend::kNftables);
  EXPECT_TRUE(c->host && c->ipv6 && c->bypass_inbound);
  EXPECT_FALSE(c->dns_capture);
  EXPECT_TRUE(c->EffectiveDnsCapture());
  EXPECT_EQ(c->reroute_interfaces, (std::vector<std::string>{"eth1", "net1"}));
  EXPECT_EQ(c->probe_snat_v6, "2001:db8::1");  // canonical spelling
  EXPECT_EQ(c->kubelet_uid, 0u);
}

TEST(ParseFlags, PerPodOverrideBeatsMeshWide) {
  absl::StatusOr<Config> c = Parse({"--dns-capture", "on", "--pod-dns-capture", "off"});
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->EffectiveDnsCapture());
}

TEST(ParseFlags, RejectsBadInputWithTheArgumentNamed) {
  struct Bad {
    std::vector<std::string> args;
    const char* mentions;
  } cases[] = {
      {{"--backend", "pf"}, "--backend"},
      {{"--backend"}, "needs a value"},
      {{"--dns-capture", "maybe"}, "--dns-capture"},
      {{"--probe-snat-v4", "::1"}, "--probe-snat-v4"},
      {{"--probe-snat-v6", "10.0.0.1"}, "--probe-snat-v6"},
      {{"--probe-snat-v4", "1.2.3.4 -j DROP"}, "--probe-snat-v4"},
      {{"--reroute-interface", "eth0 -j ACCEPT"}, "--reroute-interface"},
      {{"--reroute-interface", "averyveryverylongname"}, "--reroute-interface"},
      {{"--reroute-interface", ""}, "--reroute-interface"},
      {{"--reroute-interface", "-x"}, "--reroute-interface"},
      {{"--kubelet-uid", "-1"}, "--kubelet-uid"},
      {{"--kubelet-uid", "4294967296"}, "--kubelet-uid"},
      {{"--kubelet-uid", "12abc"}, "--kubelet-uid"},
      {{"--host=yes"}, "takes no value"},
      {{"--frobnicate"}, "unknown flag"},
      {{"positional"}, "unexpected argument"},
  };
  for (const Bad& b : cases) {
    absl::StatusOr<Config> c = Parse(b.args);
    ASSERT_FALSE(c.ok()) << b.args[0];
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find(b.mentions), absl::string_view::npos) << c.status();
  }
}

TEST(Validate, ChecksHandBuiltConfigs) {
  Config c;
  EXPECT_TRUE(Validate(c).ok());
  c.probe_snat_v4 = "not-an-ip";
  EXPECT_EQ(Validate(c).code(), absl::StatusCode::kInvalidArgument);
  c = Config{};
  c.reroute_interfaces.assign(65, "eth0");
  EXPECT_EQ(Validate(c).code(), absl::StatusCode::kInvalidArgument);
  c = Config{};
  c.reroute_interfaces = {"bad name"};
  EXPECT_EQ(Validate(c).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ambient::redirect
