// Every istio golden (14 iptables, 14 nftables) rendered byte for byte from
// the CONFIG flags of its case; the goldens are the copies in tests/redirect/testdata/istio-golden.
#include "ambient/redirect/render.h"

#include <gtest/gtest.h>

#include "ambient/redirect/config.h"
#include "redirect/golden_cases.h"

namespace ambient::redirect {
namespace {

using testing::GoldenCase;
using testing::GoldenCases;
using testing::GoldenPayload;

class GoldenRender : public ::testing::TestWithParam<std::tuple<bool, int>> {};

TEST_P(GoldenRender, MatchesIstioByteForByte) {
  const bool nft = std::get<0>(GetParam());
  const GoldenCase c = GoldenCases(nft)[std::get<1>(GetParam())];
  std::vector<std::string> flags = c.flags;
  flags.insert(flags.begin(), {"--backend", nft ? "nftables" : "iptables"});
  absl::StatusOr<Config> config = ParseFlags(flags);
  ASSERT_TRUE(config.ok()) << config.status();
  std::string want;
  ASSERT_TRUE(GoldenPayload(c, nft, &want)) << "cannot read " << testing::GoldenPath(c, nft);
  absl::StatusOr<std::string> got = Render(*config);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, want) << c.name << (nft ? " (nftables)" : " (iptables)");
}

INSTANTIATE_TEST_SUITE_P(All, GoldenRender,
                         ::testing::Combine(::testing::Bool(), ::testing::Range(0, 14)),
                         [](const ::testing::TestParamInfo<std::tuple<bool, int>>& info) {
                           bool nft = std::get<0>(info.param);
                           return std::string(nft ? "nft_" : "iptables_") +
                                  GoldenCases(nft)[std::get<1>(info.param)].name;
                         });

TEST(GoldenRender, ThereAre28Goldens) {
  int found = 0;
  for (bool nft : {false, true}) {
    for (const GoldenCase& c : GoldenCases(nft)) {
      std::string text;
      if (GoldenPayload(c, nft, &text)) ++found;
    }
  }
  EXPECT_EQ(found, 28);
}

TEST(Render, Ipv6PayloadFollowsIpv4Payload) {
  Config config;
  config.ipv6 = true;
  absl::StatusOr<std::string> both = Render(config);
  config.ipv6 = false;
  absl::StatusOr<std::string> v4 = Render(config);
  ASSERT_TRUE(both.ok() && v4.ok());
  ASSERT_EQ(both->compare(0, v4->size(), *v4), 0);
  EXPECT_NE(both->find("::1/128"), std::string::npos);
  EXPECT_EQ(v4->find("::1/128"), std::string::npos);
}

TEST(Render, NftHostRulesWithoutKubeletFail) {
  Config config;
  config.backend = Backend::kNftables;
  config.host = true;
  // No kubelet runs on a build machine; an explicit UID is needed then.
  absl::StatusOr<std::string> text = Render(config);
  if (!text.ok()) {
    EXPECT_EQ(text.status().code(), absl::StatusCode::kNotFound);
    EXPECT_NE(text.status().message().find("kubelet"), absl::string_view::npos);
  }
  config.kubelet_uid = 4242;
  text = Render(config);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_NE(text->find("skuid 4242"), std::string::npos);
}

TEST(SaveForm, SpellsWhatIptablesSavePrints) {
  absl::StatusOr<std::vector<IptRuleset>> sets = BuildIptables(Config{});
  ASSERT_TRUE(sets.ok());
  std::vector<std::string> lines;
  for (const IptRule& r : (*sets)[0].rules) lines.push_back(SaveFormOf(r, IpFamily::kIPv4));
  EXPECT_NE(std::find(lines.begin(), lines.end(),
                      "-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp -m tcp ! --dport 15008 -m mark ! "
                      "--mark 0x539/0xfff -j REDIRECT --to-ports 15006"),
            lines.end());
  EXPECT_NE(std::find(lines.begin(), lines.end(),
                      "-A ISTIO_PRERT -s 169.254.7.127/32 -p tcp -m tcp -j ACCEPT"),
            lines.end());
}

}  // namespace
}  // namespace ambient::redirect
