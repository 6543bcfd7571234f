// Authorization check cost with many policies (ztunnel's RBAC bench uses
// 10,000). Two shapes: policies spread over many namespaces (one applies), and
// every policy applying to the workload and none matching (the worst case:
// every policy is evaluated, then "allow policies exist, but none allowed").
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ambient/authz/policy_store.h"

namespace {

using namespace ambient::authz;

Policy AllowFrom(std::string ns, std::string name, std::string from_ns) {
  Policy p;
  p.ns = std::move(ns);
  p.name = std::move(name);
  p.scope = Scope::kNamespace;
  p.action = Action::kAllow;
  Match m;
  m.principals.push_back(StringMatch::Exact(absl::StrCat("cluster.local/ns/", from_ns, "/sa/default")));
  m.source_ips.push_back(*IpPrefix::Parse("198.18.0.0/15"));
  m.destination_ports = {9080};
  p.rules.push_back(Rule{{Clause{{m}}}});
  return p;
}

Connection Conn() {
  Connection c;
  c.src_ip = *ambient::IpAddress::Parse("198.18.0.1");
  c.dst_ip = *ambient::IpAddress::Parse("198.18.0.2");
  c.dst_port = 9080;
  c.src_identity = ambient::identity::IstioIdentity("cluster.local", "client", "default");
  return c;
}

void BM_CheckSpreadNamespaces(benchmark::State& state) {
  std::vector<Policy> policies;
  for (int i = 0; i < state.range(0); ++i) {
    policies.push_back(AllowFrom(absl::StrCat("ns", i), "p", "client"));
  }
  PolicyStore store;
  if (!store.Replace(std::move(policies)).ok()) state.SkipWithError("replace");
  Workload w{"ns7", {}};
  Connection c = Conn();
  for (auto _ : state) {
    Decision d = store.Check(w, c);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_CheckSpreadNamespaces)->Arg(10000);

void BM_CheckAllApplyNoneMatch(benchmark::State& state) {
  std::vector<Policy> policies;
  const int n = static_cast<int>(state.range(0));
  for (int i = 0; i < n; ++i) {
    policies.push_back(AllowFrom("app", absl::StrCat("p", i), "other"));
  }
  PolicyStore store;
  if (!store.Replace(std::move(policies)).ok()) state.SkipWithError("replace");
  Workload w{"app", {}};
  Connection c = Conn();
  for (auto _ : state) {
    Decision d = store.Check(w, c);
    if (d.allowed) state.SkipWithError("expected a deny");
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_CheckAllApplyNoneMatch)->Arg(100)->Arg(10000);

void BM_Replace(benchmark::State& state) {
  std::vector<Policy> policies;
  for (int i = 0; i < state.range(0); ++i) {
    policies.push_back(AllowFrom(absl::StrCat("ns", i % 100), absl::StrCat("p", i), "client"));
  }
  PolicyStore store;
  for (auto _ : state) {
    if (!store.Replace(policies).ok()) state.SkipWithError("replace");
  }
}
BENCHMARK(BM_Replace)->Arg(10000)->Unit(benchmark::kMillisecond);

}  // namespace
