// bench/xds/push.h: the ztunnel-sized istio.workload.Address push the xDS
// benchmarks share: `workloads` pods (198.18.x.y, HBONE, each the endpoint
// of one of `services` services) and the services, as delta xDS resources.
#ifndef AMBIENT_BENCH_XDS_PUSH_H_
#define AMBIENT_BENCH_XDS_PUSH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ambient/xds/address_handler.h"
#include "workload.pb.h"

namespace ambient::bench_xds {

namespace wl = ::ambient::wire::istio::workload;
using ambient::xds::ResourceUpdate;

inline std::string V4(uint32_t host_order) {
  return std::string({static_cast<char>(host_order >> 24), static_cast<char>(host_order >> 16),
                      static_cast<char>(host_order >> 8), static_cast<char>(host_order)});
}

inline std::string Hostname(int s) { return absl::StrCat("svc", s, ".ns", s % 100, ".svc.cluster.local"); }

// Push builds `workloads` pods (198.18.x.y, ten per service) and `services`.
inline std::vector<ResourceUpdate> Push(int workloads, int services) {
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

}  // namespace ambient::bench_xds

#endif  // AMBIENT_BENCH_XDS_PUSH_H_
