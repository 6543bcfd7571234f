// The DNS proxy's answer logic; see ambient/dns/answer.h.
#include "ambient/dns/answer.h"

#include "dns/ldns_headers.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace ambient::dns {
namespace {

using runtime::Service;
using runtime::Workload;
using runtime::WorkloadDirectory;

constexpr size_t kHeaderSize = 12;
constexpr size_t kUdpDefaultLimit = 512;
constexpr size_t kTcpLimit = 65535;

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;

// The addresses a mesh name resolves to; `owned` even when empty (NODATA).
struct Resolution {
  bool owned = false;
  std::vector<authz::IpAddr> ips;
};

void AddUnique(std::vector<authz::IpAddr>& out, const authz::IpAddr& ip) {
  for (const auto& have : out) {
    if (have == ip) return;
  }
  out.push_back(ip);
}

void AddWorkloadIps(const Workload& w, std::vector<authz::IpAddr>& out) {
  for (const auto& a : w.addresses) {
    auto ip = authz::IpAddr::Parse(a);
    if (ip.ok()) AddUnique(out, *ip);
  }
}

// ServiceIps: the VIPs on the pod's network; for a headless service (no VIP
// at all) the healthy endpoints' addresses.
void ServiceIps(const WorkloadDirectory::View& v, const Service& s, const PodDnsContext& pod,
                std::vector<authz::IpAddr>& out) {
  if (!s.vips.empty()) {
    for (const auto& vip : s.vips) {
      if (vip.network == pod.network) AddUnique(out, vip.ip);
    }
    return;
  }
  for (const Workload* w : v.Endpoints(s)) {
    if (w->healthy) AddWorkloadIps(*w, out);
  }
}

// FindService finds a service by exact hostname: the pod's namespace first,
// then the namespace a Kubernetes hostname names, then any namespace.
const Service* FindService(const WorkloadDirectory::View& v, const std::vector<Service>& all,
                           const PodDnsContext& pod, const std::string& host) {
  if (const Service* s = v.ServiceByHostname(pod.ns, host)) return s;
  std::vector<std::string> labels = absl::StrSplit(host, '.');
  if (labels.size() >= 3 && labels[2] == "svc") {
    if (const Service* s = v.ServiceByHostname(labels[1], host)) return s;
  }
  for (const auto& s : all) {
    if (s.hostname == host) return v.ServiceByHostname(s.ns, s.hostname);
  }
  return nullptr;
}

// Expand lists the hostnames `name` may stand for: itself, and the
// Kubernetes service hostname its short form names ("name" in the pod's
// namespace, "name.ns", "name.ns.svc").
std::vector<std::string> Expand(const std::string& name, const PodDnsContext& pod) {
  const std::string k8s_suffix = ".svc." + pod.cluster_domain;
  std::vector<std::string> hosts = {name};
  size_t dots = std::count(name.begin(), name.end(), '.');
  if (dots == 0) hosts.push_back(name + "." + pod.ns + k8s_suffix);
  if (dots == 1) hosts.push_back(name + k8s_suffix);
  if (dots == 2 && absl::EndsWith(name, ".svc")) hosts.push_back(name + "." + pod.cluster_domain);
  return hosts;
}

// Lookup resolves one candidate name (lowercase, no final dot).
Resolution Lookup(const WorkloadDirectory::View& v, const std::vector<Service>& all,
                  const PodDnsContext& pod, const std::string& name) {
  Resolution r;
  for (const auto& h : Expand(name, pod)) {
    if (const Service* s = FindService(v, all, pod, h)) {
      r.owned = true;
      ServiceIps(v, *s, pod, r.ips);
      return r;
    }
  }
  // "<workload name>.<service hostname>": a pod of a (headless) service.
  size_t dot = name.find('.');
  if (dot != std::string::npos) {
    std::string wname = name.substr(0, dot);
    for (const auto& h : Expand(name.substr(dot + 1), pod)) {
      const Service* s = FindService(v, all, pod, h);
      if (s == nullptr) continue;
      for (const Workload* w : v.Endpoints(*s)) {
        if (absl::AsciiStrToLower(w->name) == wname) {
          r.owned = true;
          AddWorkloadIps(*w, r.ips);
        }
      }
      if (r.owned) return r;
    }
  }
  // Wildcard hosts ("*.example.com" matches "a.example.com", "a.b.example.com").
  const Service* best = nullptr;
  for (const auto& s : all) {
    if (!absl::StartsWith(s.hostname, "*.")) continue;
    absl::string_view suffix = absl::string_view(s.hostname).substr(1);
    if (name.size() > suffix.size() && absl::EndsWith(name, suffix)) {
      // The most specific wildcard wins; the pod's namespace breaks ties.
      if (best == nullptr || s.hostname.size() > best->hostname.size() ||
          (s.hostname.size() == best->hostname.size() && s.ns == pod.ns)) {
        best = v.ServiceByHostname(s.ns, s.hostname);
      }
    }
  }
  if (best != nullptr) {
    r.owned = true;
    ServiceIps(v, *best, pod, r.ips);
  }
  return r;
}

// Candidates: the name itself, then the name with each search domain the
// stub resolver may have appended taken off.
std::vector<std::string> Candidates(const std::string& name, const PodDnsContext& pod) {
  std::vector<std::string> out = {name};
  std::vector<std::string> search = pod.search_domains;
  if (search.empty()) {
    search = {pod.ns + ".svc." + pod.cluster_domain, "svc." + pod.cluster_domain,
              pod.cluster_domain};
  }
  for (auto s : search) {
    s = absl::AsciiStrToLower(s);
    while (!s.empty() && s.back() == '.') s.pop_back();
    if (s.empty()) continue;
    if (name.size() > s.size() + 1 && absl::EndsWith(name, s) &&
        name[name.size() - s.size() - 1] == '.') {
      out.push_back(name.substr(0, name.size() - s.size() - 1));
    }
  }
  return out;
}

// Serialize turns `p` into wire bytes; "" on failure.
std::string Serialize(ldns_pkt* p) {
  uint8_t* wire = nullptr;
  size_t size = 0;
  if (ldns_pkt2wire(&wire, p, &size) != LDNS_STATUS_OK || wire == nullptr) {
    free(wire);
    return "";
  }
  std::string out(reinterpret_cast<const char*>(wire), size);
  free(wire);
  return out;
}

// ReplyTo starts a reply to `q`: same ID, RD and (when given) question.
Pkt ReplyTo(uint16_t id, bool rd, ldns_rr* question) {
  Pkt r(ldns_pkt_new());
  if (!r) return r;
  ldns_pkt_set_id(r.get(), id);
  ldns_pkt_set_qr(r.get(), true);
  ldns_pkt_set_rd(r.get(), rd);
  ldns_pkt_set_ra(r.get(), true);
  ldns_pkt_set_opcode(r.get(), LDNS_PACKET_QUERY);
  if (question != nullptr) {
    ldns_pkt_push_rr(r.get(), LDNS_SECTION_QUESTION, ldns_rr_clone(question));
  }
  return r;
}

AnswerResult HeaderOnly(absl::string_view query, ldns_pkt_rcode rcode) {
  AnswerResult out;
  auto id =
      static_cast<uint16_t>((static_cast<uint8_t>(query[0]) << 8) | static_cast<uint8_t>(query[1]));
  bool rd = (static_cast<uint8_t>(query[2]) & 0x01) != 0;
  Pkt r = ReplyTo(id, rd, nullptr);
  if (!r) return out;
  ldns_pkt_set_rcode(r.get(), rcode);
  out.reply = Serialize(r.get());
  if (!out.reply.empty()) {
    out.action = AnswerResult::Action::kReply;
    out.rcode = rcode;
  }
  return out;
}

std::string Lowercase(const ldns_rdf* dname) {
  char* text = ldns_rdf2str(dname);
  if (text == nullptr) return "";
  std::string s = absl::AsciiStrToLower(text);
  free(text);
  while (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

AnswerResult Answer(absl::string_view query, const WorkloadDirectory& dir, const PodDnsContext& pod,
                    Transport transport) {
  AnswerResult out;
  if (query.size() < kHeaderSize) return out;                    // no ID to answer
  if ((static_cast<uint8_t>(query[2]) & 0x80) != 0) return out;  // QR: a response
  int opcode = (static_cast<uint8_t>(query[2]) >> 3) & 0x0f;
  if (opcode != LDNS_PACKET_QUERY) return HeaderOnly(query, LDNS_RCODE_NOTIMPL);

  ldns_pkt* raw = nullptr;
  if (ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t*>(query.data()), query.size()) !=
          LDNS_STATUS_OK ||
      raw == nullptr) {
    ldns_pkt_free(raw);
    return HeaderOnly(query, LDNS_RCODE_FORMERR);
  }
  Pkt q(raw);
  ldns_rr_list* questions = ldns_pkt_question(q.get());
  if (ldns_pkt_qdcount(q.get()) != 1 || questions == nullptr ||
      ldns_rr_list_rr_count(questions) != 1) {
    return HeaderOnly(query, LDNS_RCODE_FORMERR);
  }
  ldns_rr* question = ldns_rr_list_rr(questions, 0);
  out.qname = Lowercase(ldns_rr_owner(question));
  out.qtype = static_cast<uint16_t>(ldns_rr_get_type(question));
  if (ldns_rr_get_class(question) != LDNS_RR_CLASS_IN || out.qname.empty()) {
    out.action = AnswerResult::Action::kForward;
    return out;
  }

  Resolution res;
  {
    WorkloadDirectory::View v = dir.Read();
    std::vector<Service> all = dir.AllServices();
    for (const auto& c : Candidates(out.qname, pod)) {
      res = Lookup(v, all, pod, c);
      if (res.owned) break;
    }
  }
  if (!res.owned) {
    out.action = AnswerResult::Action::kForward;
    return out;
  }

  Pkt r = ReplyTo(ldns_pkt_id(q.get()), ldns_pkt_rd(q.get()), question);
  if (!r) return out;
  ldns_pkt_set_aa(r.get(), true);
  ldns_pkt_set_rcode(r.get(), LDNS_RCODE_NOERROR);
  size_t limit = kTcpLimit;
  if (transport == Transport::kUdp) {
    limit = kUdpDefaultLimit;
    if (ldns_pkt_edns(q.get())) {
      limit = std::max<size_t>(kUdpDefaultLimit, ldns_pkt_edns_udp_size(q.get()));
      ldns_pkt_set_edns_udp_size(r.get(), 1232);
    }
  } else if (ldns_pkt_edns(q.get())) {
    ldns_pkt_set_edns_udp_size(r.get(), 1232);
  }
  size_t want_len = out.qtype == LDNS_RR_TYPE_A ? 4 : out.qtype == LDNS_RR_TYPE_AAAA ? 16 : 0;
  for (const auto& ip : res.ips) {
    if (want_len == 0 || ip.bytes().size() != want_len) continue;
    ldns_rr* rr = ldns_rr_new();
    ldns_rr_set_owner(rr, ldns_rdf_clone(ldns_rr_owner(question)));
    ldns_rr_set_type(rr, static_cast<ldns_rr_type>(out.qtype));
    ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(rr, kMeshTtlSeconds);
    ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(want_len == 4 ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA,
                                               want_len, ip.bytes().data()));
    ldns_pkt_push_rr(r.get(), LDNS_SECTION_ANSWER, rr);
    ++out.answer_count;
  }
  out.reply = Serialize(r.get());
  if (out.reply.size() > limit) {
    // Too big for this transport: truncated, so the client retries over TCP.
    Pkt t = ReplyTo(ldns_pkt_id(q.get()), ldns_pkt_rd(q.get()), question);
    if (!t) return AnswerResult{};
    ldns_pkt_set_aa(t.get(), true);
    ldns_pkt_set_tc(t.get(), true);
    out.reply = Serialize(t.get());
    out.answer_count = 0;
  }
  if (out.reply.empty()) return AnswerResult{};
  out.action = AnswerResult::Action::kReply;
  out.rcode = LDNS_RCODE_NOERROR;
  return out;
}

std::string ServfailFor(absl::string_view query) {
  if (query.size() < kHeaderSize) return "";
  auto id =
      static_cast<uint16_t>((static_cast<uint8_t>(query[0]) << 8) | static_cast<uint8_t>(query[1]));
  bool rd = (static_cast<uint8_t>(query[2]) & 0x01) != 0;
  ldns_pkt* raw = nullptr;
  ldns_rr* question = nullptr;
  Pkt q;
  if (ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t*>(query.data()), query.size()) ==
          LDNS_STATUS_OK &&
      raw != nullptr) {
    q.reset(raw);
    ldns_rr_list* qs = ldns_pkt_question(q.get());
    if (qs != nullptr && ldns_rr_list_rr_count(qs) == 1) question = ldns_rr_list_rr(qs, 0);
  } else {
    ldns_pkt_free(raw);
  }
  Pkt r = ReplyTo(id, rd, question);
  if (!r) return "";
  ldns_pkt_set_rcode(r.get(), LDNS_RCODE_SERVFAIL);
  return Serialize(r.get());
}

}  // namespace ambient::dns
