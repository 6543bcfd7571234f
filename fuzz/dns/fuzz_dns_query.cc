// fuzz_dns_query: the DNS proxy's answer logic (ambient::dns::Answer) on
// arbitrary bytes from a pod, over UDP and TCP, against a small directory
// with a VIP service, a headless service and a wildcard host. Every input is
// answered, forwarded or dropped; a reply always parses as a DNS response
// with the query's ID; never a crash or a leak.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "ambient/dns/answer.h"

// libresolv last: its headers define short macros (QUERY, NOERROR, T_A...).
#include <arpa/nameser.h>
#include <resolv.h>

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
  ns_msg h;
  if (ns_initparse(reinterpret_cast<const unsigned char*>(r.reply.data()),
                   static_cast<int>(r.reply.size()), &h) != 0) {
    abort();
  }
  if (!ns_msg_getflag(h, ns_f_qr)) abort();
  if (size < 2 || ns_msg_id(h) != ((data[0] << 8) | data[1])) abort();
  // Every record of the reply expands (names and compression pointers valid).
  for (ns_sect s : {ns_s_qd, ns_s_an, ns_s_ns, ns_s_ar}) {
    for (int i = 0; i < ns_msg_count(h, s); ++i) {
      ns_rr rr;
      if (ns_parserr(&h, s, i, &rr) != 0) abort();
    }
  }
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
