// The DNS proxy's answer logic; see ambient/dns/answer.h.
#include "ambient/dns/answer.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "dns/wire.h"

namespace ambient::dns {
namespace {

using runtime::Service;
using runtime::Workload;
using runtime::WorkloadDirectory;

constexpr size_t kUdpDefaultLimit = 512;
constexpr size_t kTcpLimit = wire::kMaxMessage;
// The UDP payload size the proxy advertises back to EDNS clients.
constexpr uint16_t kEdnsUdpSize = 1232;

// The addresses a mesh name resolves to; `owned` even when empty (NODATA).
struct Resolution {
  bool owned = false;
  std::vector<ambient::IpAddress> ips;
};

void AddUnique(std::vector<ambient::IpAddress>& out, const ambient::IpAddress& ip) {
  for (const auto& have : out) {
    if (have == ip) return;
  }
  out.push_back(ip);
}

void AddWorkloadIps(const Workload& w, std::vector<ambient::IpAddress>& out) {
  for (const auto& a : w.addresses) {
    auto ip = ambient::IpAddress::Parse(a);
    if (ip.ok()) AddUnique(out, *ip);
  }
}

// ServiceIps: the VIPs on the pod's network; for a headless service (no VIP
// at all) the healthy endpoints' addresses.
void ServiceIps(const WorkloadDirectory::View& v, const Service& s, const PodDnsContext& pod,
                std::vector<ambient::IpAddress>& out) {
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

AnswerResult HeaderOnly(const wire::Header& header, int rcode) {
  AnswerResult out;
  out.reply = wire::HeaderOnlyReply(header, rcode);
  out.action = AnswerResult::Action::kReply;
  out.rcode = rcode;
  return out;
}

std::string Lowercase(absl::string_view presentation) {
  std::string s = absl::AsciiStrToLower(presentation);
  while (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

AnswerResult Answer(absl::string_view query, const WorkloadDirectory& dir, const PodDnsContext& pod,
                    Transport transport) {
  AnswerResult out;
  wire::Header header;
  if (!wire::ReadHeader(query, &header)) return out;  // no ID to answer
  if (header.qr) return out;                          // a response
  if (header.opcode != wire::kOpcodeQuery) return HeaderOnly(header, wire::kRcodeNotImp);

  wire::Query q;
  if (!wire::ParseQuery(query, &q)) return HeaderOnly(header, wire::kRcodeFormErr);
  out.qname = Lowercase(q.qname);
  out.qtype = q.qtype;
  if (q.qclass != wire::kClassIn || out.qname.empty()) {
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

  size_t limit = kTcpLimit;
  if (transport == Transport::kUdp) {
    limit = kUdpDefaultLimit;
    if (q.edns) limit = std::max<size_t>(kUdpDefaultLimit, q.edns_udp_size);
  }
  size_t want_len = q.qtype == wire::kTypeA ? 4 : q.qtype == wire::kTypeAaaa ? 16 : 0;
  {
    wire::ReplyWriter w(header.id, wire::kOpcodeQuery, header.rd, wire::kRcodeNoError);
    w.SetAuthoritative();
    w.AddQuestion(q.qname, q.qtype, q.qclass);
    for (const auto& ip : res.ips) {
      if (want_len == 0 || ip.bytes().size() != want_len) continue;
      w.AddAnswer(q.qname, q.qtype, kMeshTtlSeconds,
                  absl::string_view(reinterpret_cast<const char*>(ip.bytes().data()), want_len));
    }
    if (q.edns) w.AddOpt(kEdnsUdpSize);
    if (!w.overflowed()) {
      out.reply = w.Bytes();
      out.answer_count = w.answer_count();
    }
  }
  if (out.reply.empty() || out.reply.size() > limit) {
    // Too big for this transport: truncated, so the client retries over TCP.
    wire::ReplyWriter t(header.id, wire::kOpcodeQuery, header.rd, wire::kRcodeNoError);
    t.SetAuthoritative();
    t.SetTruncated();
    t.AddQuestion(q.qname, q.qtype, q.qclass);
    if (t.overflowed()) return AnswerResult{};
    out.reply = t.Bytes();
    out.answer_count = 0;
  }
  out.action = AnswerResult::Action::kReply;
  out.rcode = wire::kRcodeNoError;
  return out;
}

std::string ServfailFor(absl::string_view query) {
  wire::Header header;
  if (!wire::ReadHeader(query, &header)) return "";
  wire::ReplyWriter r(header.id, wire::kOpcodeQuery, header.rd, wire::kRcodeServFail);
  wire::Query q;
  if (wire::ParseQuery(query, &q)) r.AddQuestion(q.qname, q.qtype, q.qclass);
  if (r.overflowed()) return wire::HeaderOnlyReply(header, wire::kRcodeServFail);
  return r.Bytes();
}

}  // namespace ambient::dns
