// Privileged: the appliers in real, throwaway network namespaces (unnamed:
// the kernel removes them when the last handle closes, so nothing is left
// behind even when a test fails). Each namespace is compared with one where
// istio's own golden was loaded by iptables-restore / nft -f.
#include "ambient/redirect/apply.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/match.h"
#include "ambient/netns/netns.h"
#include "ambient/redirect/config.h"
#include "ambient/redirect/render.h"
#include "redirect/exec_in_netns.h"
#include "redirect/golden_cases.h"
#include "support/fresh_netns.h"
#include "support/privileged.h"

namespace ambient::redirect {
namespace {

using internal::ExecIn;
using internal::ExecResult;
using test_support::FreshNetns;
using testing::GoldenCase;
using testing::GoldenCases;
using testing::GoldenPayload;

// Run runs a tool inside `ns` and returns stdout (expects exit 0).
std::string RunIn(const netns::Netns& ns, std::vector<std::string> argv, const std::string& input = "") {
  absl::StatusOr<std::string> path = internal::FindProgram(argv[0]);
  EXPECT_TRUE(path.ok()) << argv[0];
  if (!path.ok()) return "";
  argv[0] = *path;
  absl::StatusOr<ExecResult> r = ExecIn(&ns, argv, input);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return "";
  EXPECT_EQ(r->exit_code, 0) << absl::StrJoin(argv, " ") << ": " << r->err;
  return r->out;
}

// Save returns iptables-save (or ip6tables-save) output without comments.
std::string Save(const netns::Netns& ns, bool v6) {
  std::string out = RunIn(ns, {v6 ? "ip6tables-nft-save" : "iptables-nft-save"});
  std::vector<std::string> keep;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (!absl::StartsWith(line, "#")) keep.emplace_back(line);
  }
  return absl::StrJoin(keep, "\n");
}

std::string NftList(const netns::Netns& ns) { return RunIn(ns, {"nft", "-s", "list", "ruleset"}); }

std::string IpRules(const netns::Netns& ns, bool v6) {
  return RunIn(ns, {"ip", v6 ? "-6" : "-4", "rule", "show"});
}

// Table100 lists routing table 100 ("" when the table does not exist).
std::string Table100(const netns::Netns& ns, bool v6) {
  absl::StatusOr<ExecResult> r = ExecIn(&ns, {"/usr/sbin/ip", v6 ? "-6" : "-4", "route", "show", "table", "100"}, "");
  EXPECT_TRUE(r.ok());
  return r.ok() && r->exit_code == 0 ? r->out : "";
}

Config ConfigOf(const GoldenCase& c, bool nft) {
  std::vector<std::string> flags = c.flags;
  flags.insert(flags.begin(), {"--backend", nft ? "nftables" : "iptables"});
  absl::StatusOr<Config> config = ParseFlags(flags);
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : Config{};
}

std::string Describe(const std::vector<Drift>& drift) {
  std::vector<std::string> lines;
  for (const Drift& d : drift) lines.push_back(d.ToString());
  return absl::StrJoin(lines, "\n");
}

ApplyOptions NftVariant() {
  ApplyOptions o;
  o.iptables_variant = IptablesVariant::kNft;
  return o;
}

// Loads istio's golden into `ns` the way istio does (plus the probe sets the
// host goldens need).
void LoadGolden(const netns::Netns& ns, const GoldenCase& c, bool nft) {
  std::string payload;
  ASSERT_TRUE(GoldenPayload(c, nft, &payload));
  if (nft) {
    if (c.host) {
      RunIn(ns, {"nft", "-f", "-"},
          "add table inet istio-ambient-nat\n"
          "add set inet istio-ambient-nat istio-inpod-probes-v4 { type ipv4_addr; }\n"
          "add set inet istio-ambient-nat istio-inpod-probes-v6 { type ipv6_addr; }\n");
    }
    RunIn(ns, {"nft", "-f", "-"}, payload);
    return;
  }
  if (c.host) {
    RunIn(ns, {"ipset", "restore"},
        "create istio-inpod-probes-v4 hash:ip family inet comment -exist\n"
        "create istio-inpod-probes-v6 hash:ip family inet6 comment -exist\n");
  }
  // An _ipv6 golden is the IPv4 payload then the IPv6 payload; the second
  // starts at the second occurrence of the first table header.
  std::string first_header = payload.substr(0, payload.find('\n') + 1);
  size_t split = payload.find("\n" + first_header, 1);
  std::string v4 = split == std::string::npos ? payload : payload.substr(0, split);
  RunIn(ns, {"iptables-nft-restore", "--noflush"}, v4 + "\n");
  if (split != std::string::npos) {
    RunIn(ns, {"ip6tables-nft-restore", "--noflush"}, payload.substr(split + 1) + "\n");
  }
}

class GoldenApply : public ::testing::TestWithParam<std::tuple<bool, int>> {};

// Applying a golden's config gives exactly the state loading istio's golden
// gives, the drift check sees no difference in either namespace, a second
// apply changes nothing and delete leaves none of ours.
TEST_P(GoldenApply, SameStateAsIstioGolden) {
  AMBIENT_REQUIRE_ROOT();
  const bool nft = std::get<0>(GetParam());
  const GoldenCase c = GoldenCases(nft)[std::get<1>(GetParam())];
  Config config = ConfigOf(c, nft);
  netns::Netns ours = FreshNetns(), istio = FreshNetns();
  ASSERT_TRUE(ours.valid() && istio.valid());

  ASSERT_TRUE(Apply(config, ours, NftVariant()).ok());
  LoadGolden(istio, c, nft);
  if (nft) {
    EXPECT_EQ(NftList(ours), NftList(istio));
  } else {
    EXPECT_EQ(Save(ours, false), Save(istio, false));
    EXPECT_EQ(Save(ours, true), Save(istio, true));
  }
  absl::StatusOr<std::vector<Drift>> drift = Check(config, ours, NftVariant());
  ASSERT_TRUE(drift.ok()) << drift.status();
  EXPECT_TRUE(drift->empty()) << Describe(*drift);
  if (c.host) {
    // Policy routing is in-pod only; compare just the rules.
    drift = Check(config, istio, NftVariant());
    ASSERT_TRUE(drift.ok());
    EXPECT_TRUE(drift->empty()) << Describe(*drift);
  }

  // Idempotent: a second apply leaves the same state and no drift.
  std::string before = nft ? NftList(ours) : Save(ours, false) + Save(ours, true);
  std::string rules_before = IpRules(ours, false) + IpRules(ours, true);
  ASSERT_TRUE(Apply(config, ours, NftVariant()).ok());
  EXPECT_EQ(before, nft ? NftList(ours) : Save(ours, false) + Save(ours, true));
  EXPECT_EQ(rules_before, IpRules(ours, false) + IpRules(ours, true));

  // Delete leaves nothing of ours.
  ASSERT_TRUE(Delete(config, ours, NftVariant()).ok());
  std::string after = NftList(ours) + Save(ours, false) + Save(ours, true);
  EXPECT_EQ(after.find("ISTIO"), std::string::npos) << after;
  EXPECT_EQ(after.find("istio-ambient"), std::string::npos) << after;
  EXPECT_EQ(IpRules(ours, false).find("0x111"), std::string::npos);
  EXPECT_EQ(IpRules(ours, true).find("0x111"), std::string::npos);
  EXPECT_EQ(Table100(ours, false), "");
  EXPECT_EQ(Table100(ours, true), "");
}

INSTANTIATE_TEST_SUITE_P(All, GoldenApply,
                         ::testing::Combine(::testing::Bool(), ::testing::Range(0, 14)),
                         [](const ::testing::TestParamInfo<std::tuple<bool, int>>& info) {
                           bool nft = std::get<0>(info.param);
                           return std::string(nft ? "nft_" : "iptables_") +
                                  GoldenCases(nft)[std::get<1>(info.param)].name;
                         });

Config DefaultDualStack(Backend backend) {
  Config c;
  c.backend = backend;
  c.ipv6 = true;
  return c;
}

class Applier : public ::testing::TestWithParam<Backend> {};

TEST_P(Applier, InstallsPolicyRoutingBothFamilies) {
  AMBIENT_REQUIRE_ROOT();
  netns::Netns ns = FreshNetns();
  ASSERT_TRUE(Apply(DefaultDualStack(GetParam()), ns, NftVariant()).ok());
  EXPECT_NE(IpRules(ns, false).find("32764:\tfrom all fwmark 0x111/0xfff lookup 100"), std::string::npos)
      << IpRules(ns, false);
  EXPECT_NE(IpRules(ns, true).find("32764:\tfrom all fwmark 0x111/0xfff lookup 100"), std::string::npos)
      << IpRules(ns, true);
  EXPECT_NE(Table100(ns, false).find("local default dev lo"), std::string::npos) << Table100(ns, false);
  EXPECT_NE(Table100(ns, true).find("local default dev lo"), std::string::npos) << Table100(ns, true);
}

TEST_P(Applier, DeleteLeavesForeignRulesAlone) {
  AMBIENT_REQUIRE_ROOT();
  netns::Netns ns = FreshNetns();
  RunIn(ns, {"iptables-nft", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "--dport", "9999", "-j", "ACCEPT"});
  RunIn(ns, {"nft", "add", "table", "inet", "foreign"});
  RunIn(ns, {"ip", "rule", "add", "fwmark", "0x7", "lookup", "77", "pref", "1000"});
  // iptables-nft leaves empty built-in chains behind (as istio's delete
  // does), so compare the rules themselves.
  auto rules = [&] {
    std::string out;
    for (absl::string_view line : absl::StrSplit(Save(ns, false) + "\n" + Save(ns, true), '\n')) {
      if (absl::StartsWith(line, "-A")) absl::StrAppend(&out, line, "\n");
    }
    return out + IpRules(ns, false) + IpRules(ns, true);
  };
  const std::string before = rules();
  EXPECT_NE(before.find("--dport 9999"), std::string::npos);
  Config config = DefaultDualStack(GetParam());
  ASSERT_TRUE(Apply(config, ns, NftVariant()).ok());
  ASSERT_TRUE(Delete(config, ns, NftVariant()).ok());
  EXPECT_EQ(before, rules());
  EXPECT_NE(NftList(ns).find("table inet foreign"), std::string::npos);
  // Deleting again is fine.
  EXPECT_TRUE(Delete(config, ns, NftVariant()).ok());
}

TEST_P(Applier, CheckReportsMissingExtraAndModifiedThenApplyRepairs) {
  AMBIENT_REQUIRE_ROOT();
  netns::Netns ns = FreshNetns();
  Config config = DefaultDualStack(GetParam());
  absl::StatusOr<std::vector<Drift>> drift = Check(config, ns, NftVariant());
  ASSERT_TRUE(drift.ok()) << drift.status();
  EXPECT_FALSE(drift->empty());  // nothing installed yet
  ASSERT_TRUE(Apply(config, ns, NftVariant()).ok());
  if (GetParam() == Backend::kNftables) {
    RunIn(ns, {"nft", "add", "rule", "inet", "istio-ambient-nat", "istio-output", "tcp", "dport", "1234", "accept"});
  } else {
    RunIn(ns, {"iptables-nft", "-t", "nat", "-A", "ISTIO_OUTPUT", "-p", "tcp", "--dport", "1234", "-j", "ACCEPT"});
    RunIn(ns, {"iptables-nft", "-t", "mangle", "-D", "OUTPUT", "-j", "ISTIO_OUTPUT"});
  }
  RunIn(ns, {"ip", "rule", "del", "fwmark", "0x111/0xfff", "lookup", "100"});
  drift = Check(config, ns, NftVariant());
  ASSERT_TRUE(drift.ok());
  std::string text = Describe(*drift);
  EXPECT_NE(text.find("extra:"), std::string::npos) << text;
  // Port 1234: as iptables-save spells it, or as nft bytecode (0x04d2 in
  // network order).
  EXPECT_TRUE(text.find("--dport 1234") != std::string::npos ||
              text.find("0x0000d204") != std::string::npos)
      << text;
  EXPECT_NE(text.find("missing: policy routing: fwmark"), std::string::npos) << text;
  if (GetParam() == Backend::kIptables) {
    EXPECT_NE(text.find("missing: iptables ipv4 mangle jumps: -A OUTPUT -j ISTIO_OUTPUT"),
              std::string::npos)
        << text;
  }
  ASSERT_TRUE(Apply(config, ns, NftVariant()).ok());
  drift = Check(config, ns, NftVariant());
  ASSERT_TRUE(drift.ok());
  EXPECT_TRUE(drift->empty()) << Describe(*drift);
}

// A failure in the middle of apply leaves the namespace exactly as it was:
// fresh, and with an older (different) rule set already installed.
TEST_P(Applier, InjectedFailureLeavesNamespaceAsItWas) {
  AMBIENT_REQUIRE_ROOT();
  const bool nft = GetParam() == Backend::kNftables;
  for (bool preinstalled : {false, true}) {
    SCOPED_TRACE(preinstalled ? "with older rules installed" : "fresh namespace");
    netns::Netns ns = FreshNetns();
    if (preinstalled) {
      Config old;
      old.backend = GetParam();
      old.dns_capture = false;
      old.reroute_interfaces = {"old0"};
      ASSERT_TRUE(Apply(old, ns, NftVariant()).ok());
    }
    auto state = [&] {
      return NftList(ns) + Save(ns, false) + Save(ns, true) + IpRules(ns, false) + IpRules(ns, true) +
             Table100(ns, false) + Table100(ns, true);
    };
    const std::string before = state();
    Config config = DefaultDualStack(GetParam());
    std::vector<std::string> stages = nft ? std::vector<std::string>{"routing", "nftables", "kernel"}
                                          : std::vector<std::string>{"routing", "iptables-ipv4", "iptables-ipv6"};
    for (const std::string& stage : stages) {
      SCOPED_TRACE(stage);
      ApplyOptions options = NftVariant();
      if (stage == "kernel") {
        options.nft_inject_bad_request = true;
      } else {
        options.fault_injector = [stage](absl::string_view s) {
          return s == stage ? absl::UnavailableError("injected") : absl::OkStatus();
        };
      }
      absl::Status s = Apply(config, ns, options);
      EXPECT_FALSE(s.ok());
      EXPECT_EQ(before, state());
    }
  }
}

// Another route holding our key in table 100 (same destination and metric)
// is replaced by ours, as istio's RouteReplace does; when apply then fails,
// that route is back exactly as it was, in both families.
TEST_P(Applier, FailureAfterReplacingARoutePutsItBack) {
  AMBIENT_REQUIRE_ROOT();
  const bool nft = GetParam() == Backend::kNftables;
  netns::Netns ns = FreshNetns();
  RunIn(ns, {"ip", "-4", "route", "add", "unreachable", "default", "table", "100", "proto", "static"});
  RunIn(ns, {"ip", "-6", "route", "add", "unreachable", "default", "table", "100", "proto", "static"});
  auto state = [&] {
    return Table100(ns, false) + Table100(ns, true) + IpRules(ns, false) + IpRules(ns, true) +
           NftList(ns) + Save(ns, false) + Save(ns, true);
  };
  const std::string before = state();
  ASSERT_NE(Table100(ns, false).find("unreachable default proto static"), std::string::npos) << before;
  ASSERT_NE(Table100(ns, true).find("unreachable default"), std::string::npos) << before;
  Config config = DefaultDualStack(GetParam());
  std::vector<std::string> stages = nft ? std::vector<std::string>{"routing", "nftables", "kernel"}
                                        : std::vector<std::string>{"routing", "iptables-ipv4", "iptables-ipv6"};
  for (const std::string& stage : stages) {
    SCOPED_TRACE(stage);
    ApplyOptions options = NftVariant();
    if (stage == "kernel") {
      options.nft_inject_bad_request = true;
    } else {
      options.fault_injector = [stage](absl::string_view s) {
        return s == stage ? absl::UnavailableError("injected") : absl::OkStatus();
      };
    }
    EXPECT_FALSE(Apply(config, ns, options).ok());
    EXPECT_EQ(before, state());
  }
  // Without a failure our local route takes the key.
  ASSERT_TRUE(Apply(config, ns, NftVariant()).ok());
  EXPECT_NE(Table100(ns, false).find("local default dev lo"), std::string::npos) << Table100(ns, false);
  EXPECT_EQ(Table100(ns, false).find("unreachable"), std::string::npos) << Table100(ns, false);
  EXPECT_NE(Table100(ns, true).find("local default dev lo"), std::string::npos) << Table100(ns, true);
}

INSTANTIATE_TEST_SUITE_P(Backends, Applier,
                         ::testing::Values(Backend::kIptables, Backend::kNftables),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kNftables ? "nftables" : "iptables";
                         });

// The legacy iptables variant (x_tables) through the same paths: apply,
// check, re-apply, injected failure and delete.
TEST(Applier, LegacyIptablesVariant) {
  AMBIENT_REQUIRE_ROOT();
  if (!internal::FindProgram("iptables-legacy-restore").ok()) {
    GTEST_SKIP() << "*** NOT RUN: iptables-legacy is not installed ***";
  }
  netns::Netns ns = FreshNetns();
  ApplyOptions legacy;
  legacy.iptables_variant = IptablesVariant::kLegacy;
  Config config = DefaultDualStack(Backend::kIptables);
  auto save = [&] {
    std::string out;
    for (const char* tool : {"iptables-legacy-save", "ip6tables-legacy-save"}) {
      for (absl::string_view line : absl::StrSplit(RunIn(ns, {tool}), '\n')) {
        if (absl::StartsWith(line, "-A") || absl::StartsWith(line, ":ISTIO")) absl::StrAppend(&out, line, "\n");
      }
    }
    return out;
  };
  ApplyOptions failing = legacy;
  failing.fault_injector = [](absl::string_view s) {
    return s == "iptables-ipv6" ? absl::UnavailableError("injected") : absl::OkStatus();
  };
  EXPECT_FALSE(Apply(config, ns, failing).ok());
  EXPECT_EQ(save(), "");
  ASSERT_TRUE(Apply(config, ns, legacy).ok());
  const std::string applied = save();
  EXPECT_NE(applied.find("-A ISTIO_OUTPUT ! -d ::1/128 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001"),
            std::string::npos)
      << applied;
  absl::StatusOr<std::vector<Drift>> drift = Check(config, ns, legacy);
  ASSERT_TRUE(drift.ok()) << drift.status();
  EXPECT_TRUE(drift->empty()) << Describe(*drift);
  ASSERT_TRUE(Apply(config, ns, legacy).ok());
  EXPECT_EQ(save(), applied);
  ASSERT_TRUE(Delete(config, ns, legacy).ok());
  EXPECT_EQ(save(), "");
}

// The host jump goes in as rule 1 of nat POSTROUTING (istio's
// "-I POSTROUTING 1", so it runs before other SNAT/MASQUERADE rules); a rule
// put in front of it later is drift, and apply moves the jump back to the
// top without touching the foreign rules.
TEST(Applier, HostJumpIsFirstInPostrouting) {
  AMBIENT_REQUIRE_ROOT();
  netns::Netns ns = FreshNetns();
  Config config;
  config.host = true;
  config.ipv6 = true;
  RunIn(ns, {"iptables-nft", "-t", "nat", "-A", "POSTROUTING", "-o", "lo", "-j", "MASQUERADE"});
  RunIn(ns, {"ip6tables-nft", "-t", "nat", "-A", "POSTROUTING", "-o", "lo", "-j", "MASQUERADE"});
  auto postrouting = [&](bool v6) {
    std::string out;
    for (absl::string_view line : absl::StrSplit(Save(ns, v6), '\n')) {
      if (absl::StartsWith(line, "-A POSTROUTING")) absl::StrAppend(&out, line, "\n");
    }
    return out;
  };
  ASSERT_TRUE(Apply(config, ns, NftVariant()).ok());
  for (bool v6 : {false, true}) {
    EXPECT_EQ(postrouting(v6), "-A POSTROUTING -j ISTIO_POSTRT\n-A POSTROUTING -o lo -j MASQUERADE\n");
  }
  absl::StatusOr<std::vector<Drift>> drift = Check(config, ns, NftVariant());
  ASSERT_TRUE(drift.ok()) << drift.status();
  EXPECT_TRUE(drift->empty()) << Describe(*drift);

  RunIn(ns, {"iptables-nft", "-t", "nat", "-I", "POSTROUTING", "1", "-s", "198.18.0.1/32", "-j", "RETURN"});
  drift = Check(config, ns, NftVariant());
  ASSERT_TRUE(drift.ok()) << drift.status();
  ASSERT_EQ(drift->size(), 1u) << Describe(*drift);
  EXPECT_EQ((*drift)[0].ToString(),
            "modified: iptables ipv4 nat jumps: -A POSTROUTING -j ISTIO_POSTRT is rule 2 of "
            "POSTROUTING, not rule 1");

  ASSERT_TRUE(Apply(config, ns, NftVariant()).ok());
  EXPECT_EQ(postrouting(false),
            "-A POSTROUTING -j ISTIO_POSTRT\n-A POSTROUTING -s 198.18.0.1/32 -j RETURN\n"
            "-A POSTROUTING -o lo -j MASQUERADE\n");
  drift = Check(config, ns, NftVariant());
  ASSERT_TRUE(drift.ok()) << drift.status();
  EXPECT_TRUE(drift->empty()) << Describe(*drift);

  ASSERT_TRUE(Delete(config, ns, NftVariant()).ok());
  EXPECT_EQ(postrouting(false),
            "-A POSTROUTING -s 198.18.0.1/32 -j RETURN\n-A POSTROUTING -o lo -j MASQUERADE\n");
  EXPECT_EQ(postrouting(true), "-A POSTROUTING -o lo -j MASQUERADE\n");
}

// Host iptables rules need the probe ipsets; apply makes them (over
// netlink, like `ipset create NAME hash:ip comment`), and a failed apply
// removes the ones it made but never one that was there before. A set of
// that name but another kind is refused, and nothing is installed.
TEST(Applier, HostIpsetsAreMadeAndRolledBack) {
  AMBIENT_REQUIRE_ROOT();
  Config config;
  config.host = true;
  config.ipv6 = true;
  auto sets = [](const netns::Netns& ns) {
    std::string out;
    for (absl::string_view line : absl::StrSplit(RunIn(ns, {"ipset", "list", "-t"}), '\n')) {
      if (absl::StartsWith(line, "Name:") || absl::StartsWith(line, "Type:") ||
          absl::StartsWith(line, "Header:")) {
        // The initval is random per set.
        absl::StrAppend(&out, line.substr(0, line.find(" initval")), "\n");
      }
    }
    return out;
  };
  netns::Netns ns = FreshNetns();
  ApplyOptions failing = NftVariant();
  failing.fault_injector = [](absl::string_view s) {
    return s == "iptables-ipv6" ? absl::UnavailableError("injected") : absl::OkStatus();
  };
  EXPECT_FALSE(Apply(config, ns, failing).ok());
  EXPECT_EQ(sets(ns), "");
  EXPECT_EQ(Save(ns, false).find("ISTIO"), std::string::npos);

  ASSERT_TRUE(Apply(config, ns, NftVariant()).ok());
  // Same sets as the ipset tool makes.
  netns::Netns by_tool = FreshNetns();
  RunIn(by_tool, {"ipset", "create", kProbeSetV4, "hash:ip", "comment"});
  RunIn(by_tool, {"ipset", "create", kProbeSetV6, "hash:ip", "family", "inet6", "comment"});
  EXPECT_EQ(sets(ns), sets(by_tool));
  EXPECT_NE(sets(ns).find("comment"), std::string::npos) << sets(ns);

  // A missing set is drift.
  RunIn(ns, {"iptables-nft", "-t", "nat", "-F", "ISTIO_POSTRT"});
  RunIn(ns, {"ipset", "destroy", kProbeSetV4});
  absl::StatusOr<std::vector<Drift>> drift = Check(config, ns, NftVariant());
  ASSERT_TRUE(drift.ok()) << drift.status();
  EXPECT_NE(Describe(*drift).find("missing: ipset: istio-inpod-probes-v4"), std::string::npos)
      << Describe(*drift);
  ASSERT_TRUE(Apply(config, ns, NftVariant()).ok());
  drift = Check(config, ns, NftVariant());
  ASSERT_TRUE(drift.ok()) << drift.status();
  EXPECT_TRUE(drift->empty()) << Describe(*drift);

  // Sets that were there before survive a failed apply.
  ASSERT_TRUE(Delete(config, ns, NftVariant()).ok());
  EXPECT_FALSE(Apply(config, ns, failing).ok());
  EXPECT_EQ(sets(ns), sets(by_tool));

  netns::Netns clash = FreshNetns();
  RunIn(clash, {"ipset", "create", kProbeSetV4, "hash:net"});
  const std::string before = sets(clash);
  absl::Status s = Apply(config, clash, NftVariant());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(sets(clash), before);
  EXPECT_EQ(Save(clash, false).find("ISTIO"), std::string::npos);
}

// Distinct namespaces may be handled from several threads at once.
TEST(Applier, ConcurrentAppliesOnDistinctNamespaces) {
  AMBIENT_REQUIRE_ROOT();
  constexpr int kPods = 8;
  std::vector<netns::Netns> pods;
  for (int i = 0; i < kPods; ++i) pods.push_back(FreshNetns());
  std::vector<absl::Status> results(kPods);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kPods; i += 4) {
        Config c = DefaultDualStack(i % 2 == 0 ? Backend::kNftables : Backend::kIptables);
        results[i] = Apply(c, pods[i], NftVariant());
        if (results[i].ok()) {
          absl::StatusOr<std::vector<Drift>> d = Check(c, pods[i], NftVariant());
          results[i] = !d.ok() ? d.status()
                       : d->empty() ? absl::OkStatus()
                                    : absl::InternalError(Describe(*d));
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kPods; ++i) EXPECT_TRUE(results[i].ok()) << i << ": " << results[i];
}

TEST(Applier, BadInputChangesNothing) {
  Config bad;
  bad.probe_snat_v4 = "1.2.3.4 -j DROP";
  netns::Netns none;
  EXPECT_EQ(Apply(bad, none).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Apply(Config{}, none).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ambient::redirect
