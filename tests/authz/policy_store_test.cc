// Which policies apply to a workload, and how ALLOW, DENY and dry-run combine.
#include "ambient/authz/policy_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace ambient::authz {
namespace {

Connection From(const char* ns, uint16_t port = 9080) {
  Connection c;
  c.src_ip = *IpAddress::Parse("198.18.0.1");
  c.dst_ip = *IpAddress::Parse("198.18.0.2");
  c.dst_port = port;
  c.src_identity = identity::IstioIdentity("cluster.local", ns, "default");
  return c;
}

Policy Make(const char* ns, const char* name, Scope scope, Action action, const char* from_ns,
            bool dry_run = false) {
  Policy p;
  p.ns = ns;
  p.name = name;
  p.scope = scope;
  p.action = action;
  p.dry_run = dry_run;
  Match m;
  m.namespaces.push_back(StringMatch::Exact(from_ns));
  p.rules.push_back(Rule{{Clause{{m}}}});
  return p;
}

TEST(PolicyStore, NoPoliciesAllows) {
  PolicyStore store;
  Decision d = store.Check({"app", {}}, From("x"));
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.reason, "");
}

TEST(PolicyStore, DenyWinsOverAllow) {
  PolicyStore store;
  ASSERT_TRUE(store
                  .Replace({Make("app", "allow-a", Scope::kNamespace, Action::kAllow, "a"),
                            Make("app", "deny-a", Scope::kNamespace, Action::kDeny, "a")})
                  .ok());
  Decision d = store.Check({"app", {}}, From("a"));
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "explicitly denied by app/deny-a");
  EXPECT_EQ(d.policy, "app/deny-a");
}

TEST(PolicyStore, AllowPoliciesExistButNoneAllowed) {
  PolicyStore store;
  ASSERT_TRUE(store.Replace({Make("app", "allow-a", Scope::kNamespace, Action::kAllow, "a")}).ok());
  EXPECT_TRUE(store.Check({"app", {}}, From("a")).allowed);
  Decision d = store.Check({"app", {}}, From("b"));
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "allow policies exist, but none allowed");
  // The namespace policy does not apply to another namespace's workloads.
  EXPECT_TRUE(store.Check({"other", {}}, From("b")).allowed);
}

TEST(PolicyStore, GlobalAndSelectedPoliciesApply) {
  PolicyStore store;
  ASSERT_TRUE(store
                  .Replace({Make("istio-system", "deny-evil", Scope::kGlobal, Action::kDeny, "evil"),
                            Make("app", "sel", Scope::kWorkloadSelector, Action::kAllow, "a")})
                  .ok());
  EXPECT_FALSE(store.Check({"anything", {}}, From("evil")).allowed);
  // The selector policy applies only to workloads that list it.
  EXPECT_TRUE(store.Check({"app", {}}, From("b")).allowed);
  EXPECT_FALSE(store.Check({"app", {"app/sel"}}, From("b")).allowed);
  EXPECT_TRUE(store.Check({"app", {"app/sel"}}, From("a")).allowed);
  // Unknown selected keys are skipped.
  EXPECT_TRUE(store.Check({"app", {"app/missing"}}, From("b")).allowed);
}

TEST(PolicyStore, DryRunOnlyReports) {
  PolicyStore store;
  ASSERT_TRUE(store
                  .Replace({Make("app", "dry-deny", Scope::kNamespace, Action::kDeny, "a", true),
                            Make("app", "dry-allow", Scope::kNamespace, Action::kAllow, "z", true)})
                  .ok());
  Decision d = store.Check({"app", {}}, From("a"));
  EXPECT_TRUE(d.allowed);  // dry-run DENY does not deny, dry-run ALLOW does not restrict
  EXPECT_EQ(d.dry_run_hits, std::vector<std::string>{"app/dry-deny"});
}

TEST(PolicyStore, DuplicateKeysRejectedAndStateUnchanged) {
  PolicyStore store;
  ASSERT_TRUE(store.Replace({Make("app", "p", Scope::kNamespace, Action::kDeny, "a")}).ok());
  absl::Status s = store.Replace({Make("app", "q", Scope::kNamespace, Action::kAllow, "a"),
                                  Make("app", "q", Scope::kNamespace, Action::kAllow, "b")});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_FALSE(store.Check({"app", {}}, From("a")).allowed);
}

TEST(PolicyStore, UpsertAndRemove) {
  PolicyStore store;
  store.Upsert(Make("app", "p", Scope::kNamespace, Action::kDeny, "a"));
  EXPECT_FALSE(store.Check({"app", {}}, From("a")).allowed);
  store.Upsert(Make("app", "p", Scope::kNamespace, Action::kDeny, "b"));  // replaces
  EXPECT_EQ(store.size(), 1u);
  EXPECT_TRUE(store.Check({"app", {}}, From("a")).allowed);
  EXPECT_TRUE(store.Remove("app/p"));
  EXPECT_FALSE(store.Remove("app/p"));
  EXPECT_TRUE(store.Check({"app", {}}, From("b")).allowed);
}

TEST(PolicyStore, ApplyUpsertsThenRemovesInOneUpdate) {
  PolicyStore store;
  store.Upsert(Make("app", "old", Scope::kNamespace, Action::kDeny, "a"));
  store.Upsert(Make("app", "keep", Scope::kNamespace, Action::kDeny, "c"));
  store.Apply({Make("app", "p", Scope::kNamespace, Action::kDeny, "a"),
               Make("app", "p", Scope::kNamespace, Action::kDeny, "b"),  // the later one wins
               Make("app", "gone", Scope::kGlobal, Action::kDeny, "c")},
              {"app/old", "app/gone", "app/unknown"});
  EXPECT_EQ(store.size(), 2u);  // keep, p
  EXPECT_TRUE(store.Check({"app", {}}, From("a")).allowed);
  EXPECT_FALSE(store.Check({"app", {}}, From("b")).allowed);
  EXPECT_FALSE(store.Check({"app", {}}, From("c")).allowed);
  EXPECT_TRUE(store.Check({"other", {}}, From("c")).allowed);  // the GLOBAL one was removed
}

TEST(PolicyStore, AllListsWhatIsInForceInKeyOrder) {
  PolicyStore store;
  EXPECT_TRUE(store.All().empty());
  ASSERT_TRUE(store
                  .Replace({Make("zoo", "b", Scope::kNamespace, Action::kDeny, "x"),
                            Make("app", "z", Scope::kGlobal, Action::kAllow, "y", true),
                            Make("app", "a", Scope::kWorkloadSelector, Action::kAllow, "z")})
                  .ok());
  std::vector<Policy> all = store.All();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].key(), "app/a");
  EXPECT_EQ(all[1].key(), "app/z");
  EXPECT_EQ(all[2].key(), "zoo/b");
  // Whole copies: scope, action, dry run and the rules come along.
  EXPECT_EQ(all[1].scope, Scope::kGlobal);
  EXPECT_TRUE(all[1].dry_run);
  EXPECT_EQ(all[2].action, Action::kDeny);
  ASSERT_EQ(all[2].rules.size(), 1u);
  EXPECT_EQ(all[2].rules[0].clauses[0].matches[0].namespaces[0].value(), "x");
  // A copy: later updates do not reach it, and it reflects them when asked again.
  EXPECT_TRUE(store.Remove("app/z"));
  EXPECT_EQ(all.size(), 3u);
  EXPECT_EQ(store.All().size(), 2u);
  // A rejected update leaves the listing as it was.
  EXPECT_FALSE(store
                   .Replace({Make("q", "q", Scope::kNamespace, Action::kAllow, "a"),
                             Make("q", "q", Scope::kNamespace, Action::kAllow, "a")})
                   .ok());
  all = store.All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].key(), "app/a");
  EXPECT_EQ(all[1].key(), "zoo/b");
}

TEST(PolicyStore, ChecksRunWhileUpdatesSwap) {
  PolicyStore store;
  std::atomic<bool> stop{false};
  std::atomic<int> inconsistent{0};
  std::thread checker([&] {
    while (!stop.load()) {
      // Either snapshot is valid: deny of "a" present or absent, never a torn state.
      Decision d = store.Check({"app", {}}, From("a"));
      if (!d.allowed && d.reason != "explicitly denied by app/p") ++inconsistent;
    }
  });
  for (int i = 0; i < 2000; ++i) {
    store.Upsert(Make("app", "p", Scope::kNamespace, Action::kDeny, "a"));
    store.Remove("app/p");
  }
  stop = true;
  checker.join();
  EXPECT_EQ(inconsistent.load(), 0);
  EXPECT_EQ(store.size(), 0u);
}

}  // namespace
}  // namespace ambient::authz
