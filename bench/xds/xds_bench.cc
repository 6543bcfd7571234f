// xDS apply rate: how fast a delta xDS push of istio.workload.Address and
// istio.security.Authorization resources lands in the workload directory and
// the policy store through xds::AddressHandler / AuthorizationHandler (decode +
// convert + upsert), at ztunnel-sized pushes: 10,000 workloads that are
// endpoints of 1,000 services, and 1,000 / 10,000 policies. Items/s is
// resources applied per second; each iteration starts from an empty directory
// or store (the first push after connecting). Peers: parsing the same
// messages only (the protobuf floor), and storing the same policies one
// PolicyStore::Upsert at a time.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ambient/authz/policy_codec.h"
#include "ambient/xds/address_handler.h"
#include "ambient/xds/authorization_handler.h"
#include "authorization.pb.h"
#include "push.h"
#include "workload.pb.h"

namespace {

namespace wl = ::ambient::wire::istio::workload;
namespace sec = ::ambient::wire::istio::security;
using ambient::xds::ResourceUpdate;
using ambient::bench_xds::Push;

void BM_ApplyAddresses(benchmark::State& state) {
  std::vector<ResourceUpdate> push =
      Push(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  for (auto _ : state) {
    state.PauseTiming();
    auto dir = std::make_unique<ambient::runtime::WorkloadDirectory>();
    ambient::xds::AddressHandler h(dir.get());
    state.ResumeTiming();
    std::vector<ambient::xds::Rejection> r = h.Apply(push, {});
    if (!r.empty()) state.SkipWithError(r[0].second.c_str());
    benchmark::DoNotOptimize(dir->size());
    state.PauseTiming();
    dir.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(push.size()));
}
BENCHMARK(BM_ApplyAddresses)->Args({10000, 1000})->Args({1000, 100})->Unit(benchmark::kMillisecond);

std::vector<ResourceUpdate> PolicyPush(int64_t n) {
  std::vector<ResourceUpdate> push;
  for (int i = 0; i < n; ++i) {
    sec::Authorization a;
    a.set_name(absl::StrCat("p", i));
    a.set_namespace_(absl::StrCat("ns", i % 100));
    a.set_scope(sec::NAMESPACE);
    sec::Match* m = a.add_rules()->add_clauses()->add_matches();
    m->add_principals()->set_exact("cluster.local/ns/client/sa/default");
    m->add_destination_ports(9080);
    push.push_back({absl::StrCat(a.namespace_(), "/", a.name()), "v1",
                    ambient::xds::kAuthorizationType, a.SerializeAsString()});
  }
  return push;
}

void BM_ApplyPolicies(benchmark::State& state) {
  std::vector<ResourceUpdate> push = PolicyPush(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    auto store = std::make_unique<ambient::authz::PolicyStore>();
    ambient::xds::AuthorizationHandler h(store.get());
    state.ResumeTiming();
    std::vector<ambient::xds::Rejection> r = h.Apply(push, {});
    if (!r.empty()) state.SkipWithError(r[0].second.c_str());
    state.PauseTiming();
    store.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(push.size()));
}
BENCHMARK(BM_ApplyPolicies)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

// Peer of BM_ApplyAddresses: only parsing the same Address messages (the
// protobuf floor; no conversion, no directory).
void BM_Peer_ParseAddressesOnly(benchmark::State& state) {
  std::vector<ResourceUpdate> push =
      Push(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  for (auto _ : state) {
    for (const ResourceUpdate& u : push) {
      wl::Address a;
      if (!a.ParseFromString(u.value)) state.SkipWithError("parse");
      benchmark::DoNotOptimize(a);
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(push.size()));
}
BENCHMARK(BM_Peer_ParseAddressesOnly)
    ->Args({10000, 1000})
    ->Args({1000, 100})
    ->Unit(benchmark::kMillisecond);

// Peer of BM_ApplyPolicies: the same decoded policies stored one
// PolicyStore::Upsert at a time (a snapshot copy per policy), as the handler
// first did.
void BM_Peer_UpsertEach(benchmark::State& state) {
  std::vector<ambient::authz::Policy> policies;
  for (const ResourceUpdate& u : PolicyPush(state.range(0))) {
    policies.push_back(*ambient::authz::DecodePolicyProto(u.value));
  }
  for (auto _ : state) {
    state.PauseTiming();
    auto store = std::make_unique<ambient::authz::PolicyStore>();
    std::vector<ambient::authz::Policy> copy = policies;
    state.ResumeTiming();
    for (ambient::authz::Policy& p : copy) store->Upsert(std::move(p));
    state.PauseTiming();
    store.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(policies.size()));
}
BENCHMARK(BM_Peer_UpsertEach)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

}  // namespace
