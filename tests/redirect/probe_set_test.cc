// Privileged: the host probe sets, in throwaway namespaces standing in for
// the node. What the library writes is read back with the ipset and nft
// tools, so the tests see what the kernel holds.
#include "ambient/redirect/probe_set.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "ambient/netns/netns.h"
#include "ambient/redirect/apply.h"
#include "redirect/exec_in_netns.h"
#include "support/fresh_netns.h"
#include "support/privileged.h"

namespace ambient::redirect {
namespace {

using test_support::FreshNetns;

// Members as the system tools print them: "ADDRESS UID" lines, sorted.
std::string ToolView(const netns::Netns& ns, Backend backend) {
  std::vector<std::string> lines;
  for (const char* set : {kProbeSetV4, kProbeSetV6}) {
    std::vector<std::string> argv;
    if (backend == Backend::kIptables) {
      argv = {"/usr/sbin/ipset", "list", set};
    } else {
      argv = {"/usr/sbin/nft", "list", "set", "inet", "istio-ambient-nat", set};
    }
    absl::StatusOr<internal::ExecResult> r = internal::ExecIn(&ns, argv, "");
    EXPECT_TRUE(r.ok() && r->exit_code == 0) << (r.ok() ? r->err : r.status().ToString());
    if (!r.ok()) return "";
    // ipset: `198.18.0.5 comment "uid"`; nft: `elements = { 198.18.0.5 comment "uid", ... }`.
    std::string out = r->out;
    size_t at = 0;
    while ((at = out.find(" comment \"", at)) != std::string::npos) {
      size_t start = out.find_last_of(" {\n", at - 1) + 1;
      size_t end = out.find('"', at + 10);
      lines.push_back(out.substr(start, at - start) + " " + out.substr(at + 10, end - at - 10));
      at = end;
    }
  }
  std::sort(lines.begin(), lines.end());
  return absl::StrJoin(lines, "\n");
}

std::string LibraryView(const Config& config, const netns::Netns& ns) {
  absl::StatusOr<std::vector<ProbeMember>> members = ListProbeAddresses(config, ns);
  EXPECT_TRUE(members.ok()) << members.status();
  if (!members.ok()) return "";
  std::vector<std::string> lines;
  for (const ProbeMember& m : *members) lines.push_back(m.address + " " + m.pod_uid);
  std::sort(lines.begin(), lines.end());
  return absl::StrJoin(lines, "\n");
}

class ProbeSet : public ::testing::TestWithParam<Backend> {};

TEST_P(ProbeSet, AddReplaceRemoveByUid) {
  AMBIENT_REQUIRE_ROOT();
  netns::Netns host = FreshNetns();
  Config config;
  config.backend = GetParam();
  config.host = true;
  config.ipv6 = true;
  config.kubelet_uid = 1000;
  // No sets before the host rules are applied.
  EXPECT_EQ(AddProbeAddress(config, host, "198.18.0.5", "uid-a").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(Apply(config, host).ok());

  ASSERT_TRUE(AddProbeAddress(config, host, "198.18.0.5", "uid-a").ok());
  ASSERT_TRUE(AddProbeAddress(config, host, "2001:db8::5", "uid-a").ok());
  ASSERT_TRUE(AddProbeAddress(config, host, "::ffff:198.18.0.6", "uid-c").ok());  // IPv4-mapped
  EXPECT_EQ(ToolView(host, GetParam()), "198.18.0.5 uid-a\n198.18.0.6 uid-c\n2001:db8::5 uid-a");
  EXPECT_EQ(LibraryView(config, host), ToolView(host, GetParam()));

  // The address is reused by another pod: its UID is replaced.
  ASSERT_TRUE(AddProbeAddress(config, host, "198.18.0.5", "uid-b").ok());
  EXPECT_EQ(ToolView(host, GetParam()), "198.18.0.5 uid-b\n198.18.0.6 uid-c\n2001:db8::5 uid-a");

  // The old pod's removal leaves the new pod's address alone.
  absl::Status s = RemoveProbeAddress(config, host, "198.18.0.5", "uid-a");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("uid-b"), absl::string_view::npos) << s;
  EXPECT_EQ(ToolView(host, GetParam()), "198.18.0.5 uid-b\n198.18.0.6 uid-c\n2001:db8::5 uid-a");

  ASSERT_TRUE(RemoveProbeAddress(config, host, "198.18.0.5", "uid-b").ok());
  ASSERT_TRUE(RemoveProbeAddress(config, host, "2001:db8::5", "").ok());  // any UID
  EXPECT_EQ(ToolView(host, GetParam()), "198.18.0.6 uid-c");
  // Absent addresses are fine.
  EXPECT_TRUE(RemoveProbeAddress(config, host, "198.18.0.5", "uid-b").ok());
  EXPECT_EQ(LibraryView(config, host), "198.18.0.6 uid-c");

  // Re-applying the host rules keeps the members.
  ASSERT_TRUE(Apply(config, host).ok());
  EXPECT_EQ(LibraryView(config, host), "198.18.0.6 uid-c");
}

TEST_P(ProbeSet, BadInputChangesNothing) {
  AMBIENT_REQUIRE_ROOT();
  netns::Netns host = FreshNetns();
  Config config;
  config.backend = GetParam();
  config.host = true;
  config.kubelet_uid = 1000;
  ASSERT_TRUE(Apply(config, host).ok());
  ASSERT_TRUE(AddProbeAddress(config, host, "198.18.0.7", "uid-a").ok());
  const std::string before = LibraryView(config, host);
  for (const char* bad : {"", "198.18.0.7 -j DROP", "198.18.0.300", "host.example", "198.18.0.0/24"}) {
    EXPECT_EQ(AddProbeAddress(config, host, bad, "uid-x").code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(RemoveProbeAddress(config, host, bad, "").code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  // IPv6 is off in this config.
  EXPECT_EQ(AddProbeAddress(config, host, "2001:db8::7", "uid-a").code(), absl::StatusCode::kInvalidArgument);
  for (const std::string& uid : {std::string(""), std::string("two words"), std::string("quote\""),
                                 std::string(256, 'u'), std::string("tab\t")}) {
    EXPECT_EQ(AddProbeAddress(config, host, "198.18.0.7", uid).code(), absl::StatusCode::kInvalidArgument)
        << uid;
  }
  EXPECT_EQ(LibraryView(config, host), before);
  EXPECT_EQ(AddProbeAddress(config, netns::Netns(), "198.18.0.7", "uid-a").code(),
            absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Backends, ProbeSet,
                         ::testing::Values(Backend::kIptables, Backend::kNftables),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kNftables ? "nftables" : "iptables";
                         });

}  // namespace
}  // namespace ambient::redirect
