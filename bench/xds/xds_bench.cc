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
#include "workload.pb.h"

namespace {

namespace wl = ::ambient::wire::istio::workload;
namespace sec = ::ambient::wire::istio::security;
using ambient::xds::ResourceUpdate;

std::string V4(uint32_t host_order) {
  return std::string({static_cast<char>(host_order >> 24), static_cast<char>(host_order >> 16),
                      static_cast<char>(host_order >> 8), static_cast<char>(host_order)});
}

std::string Hostname(int s) { return absl::StrCat("svc", s, ".ns", s % 100, ".svc.cluster.local"); }

// Push builds `workloads` pods (198.18.x.y, ten per service) and `services`.
std::vector<ResourceUpdate> Push(int workloads, int services) {
  std::vector<ResourceUpdate> out;
  for (int s = 0; s < services; ++s) {
    wl::Address a;
    wl::Service* svc = a.mutable_service();
    svc->set_name(absl::StrCat("svc", s));
    svc->set_namespace_(absl::StrCat("ns", s % 100));
    svc->set_hostname(Hostname(s));
    svc->add_addresses()->set_address(V4(0xC6130000u + static_cast<uint32_t>(s) + 1));
    wl::Port* p = svc->add_ports();
    p->set_service_port(80);
    p->set_target_port(8080);
    svc->add_subject_alt_names("spiffe://cluster.local/ns/x/sa/y");
    out.push_back({absl::StrCat(svc->namespace_(), "/", svc->hostname()), "v1",
                   ambient::xds::kAddressType, a.SerializeAsString()});
  }
  for (int i = 0; i < workloads; ++i) {
    wl::Address a;
    wl::Workload* w = a.mutable_workload();
    int s = services > 0 ? i % services : 0;
    w->set_uid(absl::StrCat("Kubernetes//Pod/ns", s % 100, "/pod-", i));
    w->set_name(absl::StrCat("pod-", i));
    w->set_namespace_(absl::StrCat("ns", s % 100));
    w->add_addresses(V4(0xC6120000u + static_cast<uint32_t>(i) + 1));
    w->set_tunnel_protocol(wl::HBONE);
    w->set_service_account("default");
    w->set_node(absl::StrCat("node-", i % 10));
    w->set_canonical_name("app");
    w->set_canonical_revision("v1");
    w->mutable_locality()->set_region("r");
    w->mutable_locality()->set_zone("z");
    if (services > 0) {
      wl::PortList pl;
      (*w->mutable_services())[absl::StrCat("ns", s % 100, "/", Hostname(s))] = pl;
    }
    out.push_back({w->uid(), "v1", ambient::xds::kAddressType, a.SerializeAsString()});
  }
  return out;
}

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
