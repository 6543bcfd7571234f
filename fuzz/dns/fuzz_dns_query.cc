// fuzz_dns_query: the DNS proxy's answer logic (ambient::dns::Answer) on
// arbitrary bytes from a pod, over UDP and TCP, against a small directory
// with a VIP service, a headless service and a wildcard host. Every input is
// answered, forwarded or dropped; a reply always parses as a DNS response
// with the query's ID; never a crash or a leak.
#include "dns/ldns_headers.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "ambient/dns/answer.h"

namespace {

ambient::runtime::WorkloadDirectory* MakeDirectory() {
  auto* dir = new ambient::runtime::WorkloadDirectory();
  ambient::runtime::Service s;
  s.name = "reviews";
  s.ns = "default";
  s.hostname = "reviews.default.svc.cluster.local";
  s.vips = {*ambient::runtime::ParseNetworkAddress("198.19.0.10")};
  s.ports = {{9080, 9080}};
  if (!dir->UpsertService(s).ok()) abort();
  s.name = "db";
  s.hostname = "db.default.svc.cluster.local";
  s.vips.clear();
  if (!dir->UpsertService(s).ok()) abort();
  s.name = "wild";
  s.hostname = "*.example.com";
  s.vips = {*ambient::runtime::ParseNetworkAddress("2001:db8::5")};
  if (!dir->UpsertService(s).ok()) abort();
  ambient::runtime::Workload w;
  w.uid = "db-0";
  w.name = "db-0";
  w.ns = "default";
  w.addresses = {"198.18.0.7", "2001:db8::7"};
  w.services["default/db.default.svc.cluster.local"] = {};
  if (!dir->Upsert(w).ok()) abort();
  return dir;
}

void Check(const ambient::dns::AnswerResult& r, const uint8_t* data, size_t size) {
  using Action = ambient::dns::AnswerResult::Action;
  if (r.action != Action::kReply) {
    if (!r.reply.empty()) abort();
    return;
  }
  ldns_pkt* p = nullptr;
  if (ldns_wire2pkt(&p, reinterpret_cast<const uint8_t*>(r.reply.data()), r.reply.size()) !=
      LDNS_STATUS_OK) {
    abort();
  }
  if (!ldns_pkt_qr(p)) abort();
  if (size < 2 || ldns_pkt_id(p) != ((data[0] << 8) | data[1])) abort();
  ldns_pkt_free(p);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ambient::runtime::WorkloadDirectory* dir = MakeDirectory();
  ambient::dns::PodDnsContext pod;
  pod.ns = "default";
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  Check(ambient::dns::Answer(in, *dir, pod, ambient::dns::Transport::kUdp), data, size);
  Check(ambient::dns::Answer(in, *dir, pod, ambient::dns::Transport::kTcp), data, size);
  std::string servfail = ambient::dns::ServfailFor(in);
  if (size >= 12 && servfail.empty()) abort();
  return 0;
}
