// Builds istio-cni's rule sets (cni/pkg/iptables and cni/pkg/nftables) as
// data, in istio's emission order. The numbers in comments are the rule
// numbers of the reference table (reference/istio-cni.md, section 1.3).
#include "ambient/redirect/rules.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace ambient::redirect {
namespace {

constexpr char kPrert[] = "ISTIO_PRERT";
constexpr char kOutput[] = "ISTIO_OUTPUT";
constexpr char kPostrt[] = "ISTIO_POSTRT";

// ---- iptables helpers ----

IptTerm Addr(IptTerm::Kind kind, bool negate, std::string text) {
  IptTerm t;
  t.kind = kind;
  t.negate = negate;
  t.text = std::move(text);
  return t;
}

IptTerm Iface(IptTerm::Kind kind, bool negate, std::string name) {
  return Addr(kind, negate, std::move(name));
}

IptTerm Proto(const char* proto, bool with_module) {
  IptTerm t;
  t.kind = IptTerm::Kind::kProtocol;
  t.text = proto;
  t.with_module = with_module;
  return t;
}

IptTerm Port(IptTerm::Kind kind, bool negate, uint16_t port, const char* module) {
  IptTerm t;
  t.kind = kind;
  t.negate = negate;
  t.value = port;
  t.with_module = module != nullptr;
  t.module = module != nullptr ? module : "";
  return t;
}

IptTerm Mark(IptTerm::Kind kind, bool negate, uint32_t value, uint32_t mask) {
  IptTerm t;
  t.kind = kind;
  t.negate = negate;
  t.value = value;
  t.mask = mask;
  return t;
}

IptTarget Target(IptTarget::Kind kind, std::string text = "", uint32_t value = 0,
                 uint32_t mask = 0) {
  IptTarget t;
  t.kind = kind;
  t.text = std::move(text);
  t.value = value;
  t.mask = mask;
  return t;
}

IptTarget RedirectTo(uint16_t port, bool singular = false) {
  IptTarget t = Target(IptTarget::Kind::kRedirect, "", port);
  t.singular_port = singular;
  return t;
}

IptRule Rule(const char* table, const char* chain, std::vector<IptTerm> terms, IptTarget target) {
  IptRule r;
  r.table = table;
  r.chain = chain;
  r.terms = std::move(terms);
  r.target = std::move(target);
  return r;
}

IptRule Jump(const char* table, const char* from, const char* to) {
  return Rule(table, from, {}, Target(IptTarget::Kind::kJump, to));
}

IptRuleset InpodIptables(const Config& config, IpFamily family, const std::string& snat) {
  using K = IptTerm::Kind;
  using T = IptTarget::Kind;
  const std::string local = family == IpFamily::kIPv4 ? "127.0.0.1/32" : "::1/128";
  const bool dns = config.EffectiveDnsCapture();
  const bool ingress = config.bypass_inbound;
  IptRuleset rs;
  rs.family = family;
  auto& r = rs.rules;
  r.push_back(Jump("mangle", "PREROUTING", kPrert));  // 1
  r.push_back(Jump("mangle", "OUTPUT", kOutput));     // 2
  r.push_back(Jump("nat", "OUTPUT", kOutput));        // 3
  if (dns) {
    r.push_back(Jump("raw", "PREROUTING", kPrert));  // 4
    r.push_back(Jump("raw", "OUTPUT", kOutput));     // 5
  }
  r.push_back(Jump("nat", "PREROUTING", kPrert));  // 6
  for (const std::string& name : config.reroute_interfaces) {  // 7
    r.push_back(Rule("nat", kPrert, {Iface(K::kInInterface, false, name), Proto("tcp", false)},
                     RedirectTo(kOutboundPort)));
    r.push_back(Rule("nat", kPrert, {Iface(K::kInInterface, false, name), Proto("tcp", false)},
                     Target(T::kReturn)));
  }
  r.push_back(Rule("mangle", kPrert, {Mark(K::kMark, false, kInpodMark, kInpodMask)},  // 8
                   Target(T::kConnmarkSet, "", kInpodTproxyMark, kInpodTproxyMask)));
  if (!ingress) {  // 9
    r.push_back(Rule("nat", kPrert, {Addr(K::kSource, false, snat), Proto("tcp", true)},
                     Target(T::kAccept)));
  }
  r.push_back(Rule("nat", kOutput, {Addr(K::kDestination, false, snat), Proto("tcp", true)},  // 10
                   Target(T::kAccept)));
  if (!ingress) {  // 11
    r.push_back(Rule("nat", kPrert,
                     {Addr(K::kDestination, true, local), Proto("tcp", false),
                      Port(K::kDport, true, kInboundHbonePort, nullptr),
                      Mark(K::kMark, true, kInpodMark, kInpodMask)},
                     RedirectTo(kInboundPlaintextPort)));
  }
  r.push_back(Rule("mangle", kOutput, {Mark(K::kConnmark, false, kInpodTproxyMark, kInpodTproxyMask)},  // 12
                   Target(T::kConnmarkRestore, "", 0, kInpodRestoreMask)));
  if (dns) {
    r.push_back(Rule("nat", kOutput,  // 13
                     {Iface(K::kOutInterface, true, "lo"), Proto("udp", false),
                      Mark(K::kMark, true, kInpodMark, kInpodMask), Port(K::kDport, false, 53, "udp")},
                     RedirectTo(kDnsCapturePort, /*singular=*/true)));
    r.push_back(Rule("nat", kOutput,  // 14
                     {Addr(K::kDestination, true, local), Proto("tcp", false),
                      Port(K::kDport, false, 53, nullptr), Mark(K::kMark, true, kInpodMark, kInpodMask)},
                     RedirectTo(kDnsCapturePort)));
    r.push_back(Rule("raw", kOutput,  // 15
                     {Proto("udp", false), Mark(K::kMark, false, kInpodMark, kInpodMask),
                      Port(K::kDport, false, 53, "udp")},
                     Target(T::kCtZone, "", kDnsCtZone)));
    r.push_back(Rule("raw", kPrert,  // 16
                     {Proto("udp", false), Mark(K::kMark, true, kInpodMark, kInpodMask),
                      Port(K::kSport, false, 53, "udp")},
                     Target(T::kCtZone, "", kDnsCtZone)));
  }
  r.push_back(Rule("nat", kOutput,  // 17
                   {Proto("tcp", false), Mark(K::kMark, false, kInpodTproxyMark, kInpodTproxyMask)},
                   Target(T::kAccept)));
  r.push_back(Rule("nat", kOutput,  // 18
                   {Addr(K::kDestination, true, local), Iface(K::kOutInterface, false, "lo")},
                   Target(T::kAccept)));
  r.push_back(Rule("nat", kOutput,  // 19
                   {Addr(K::kDestination, true, local), Proto("tcp", false),
                    Mark(K::kMark, true, kInpodMark, kInpodMask)},
                   RedirectTo(kOutboundPort)));
  return rs;
}

IptTerm SocketExists() {
  IptTerm t;
  t.kind = IptTerm::Kind::kSocketExists;
  return t;
}

IptRuleset HostIptables(IpFamily family, const std::string& snat) {
  IptRuleset rs;
  rs.family = family;
  IptRule jump = Jump("nat", "POSTROUTING", kPostrt);
  jump.insert_position = 1;
  rs.rules.push_back(jump);
  IptTerm set;
  set.kind = IptTerm::Kind::kMatchSetDst;
  set.text = family == IpFamily::kIPv4 ? kProbeSetV4 : kProbeSetV6;
  rs.rules.push_back(Rule("nat", kPostrt,
                          {SocketExists(), Proto("tcp", false), set},
                          Target(IptTarget::Kind::kSnat, snat)));
  return rs;
}

// ---- nftables helpers ----

NftTerm L4(uint8_t proto) {
  NftTerm t;
  t.kind = NftTerm::Kind::kL4Proto;
  t.proto = proto;
  return t;
}

NftTerm NAddr(IpFamily family, bool source, bool negate, std::string text, bool with_prefix) {
  NftTerm t;
  t.kind = NftTerm::Kind::kAddr;
  t.family = family;
  t.is_source = source;
  t.negate = negate;
  t.text = std::move(text);
  t.with_prefix = with_prefix;
  return t;
}

NftTerm NPort(uint8_t proto, bool source, bool negate, uint16_t port) {
  NftTerm t;
  t.kind = NftTerm::Kind::kPort;
  t.proto = proto;
  t.is_source = source;
  t.negate = negate;
  t.value = port;
  return t;
}

NftTerm NMark(NftTerm::MarkStyle style, bool negate, uint32_t value, uint32_t mask) {
  NftTerm t;
  t.kind = NftTerm::Kind::kMark;
  t.mark_style = style;
  t.negate = negate;
  t.value = value;
  t.mask = mask;
  return t;
}

NftTerm NIfname(bool input, bool negate, std::string name) {
  NftTerm t;
  t.kind = NftTerm::Kind::kIfname;
  t.is_source = input;
  t.negate = negate;
  t.text = std::move(name);
  return t;
}

NftStatement Stmt(NftStatement::Kind kind, std::string text = "", uint32_t value = 0,
                  uint32_t mask = 0) {
  NftStatement s;
  s.kind = kind;
  s.text = std::move(text);
  s.value = value;
  s.mask = mask;
  return s;
}

NftRule NRule(const char* chain, std::vector<NftTerm> terms, NftStatement stmt,
              bool counter = true) {
  NftRule r;
  r.chain = chain;
  r.terms = std::move(terms);
  r.statement = std::move(stmt);
  r.counter = counter;
  return r;
}

NftRule NJump(const char* from, const char* to) {
  return NRule(from, {}, Stmt(NftStatement::Kind::kJump, to), /*counter=*/false);
}

NftChain Base(const char* name, const char* type, const char* hook, int priority) {
  NftChain c;
  c.name = name;
  c.base = true;
  c.type = type;
  c.hook = hook;
  c.priority = priority;
  return c;
}

NftChain Regular(const char* name) {
  NftChain c;
  c.name = name;
  return c;
}

constexpr char kNPre[] = "istio-prerouting";
constexpr char kNOut[] = "istio-output";

NftRuleset InpodNftables(const Config& config, const std::string& snat4,
                         const std::string& snat6) {
  using S = NftStatement::Kind;
  using M = NftTerm::MarkStyle;
  const bool v6 = config.ipv6;
  const bool dns = config.EffectiveDnsCapture();
  const bool ingress = config.bypass_inbound;
  const IpFamily kV4 = IpFamily::kIPv4, kV6 = IpFamily::kIPv6;
  NftRuleset rs;

  NftTable nat;
  nat.name = kNftNatTable;
  nat.chains = {Base("prerouting", "nat", "prerouting", -100), Base("output", "nat", "output", -100),
                Regular(kNPre), Regular(kNOut)};
  auto& n = nat.rules;
  n.push_back(NJump("output", kNOut));
  n.push_back(NJump("prerouting", kNPre));
  for (const std::string& name : config.reroute_interfaces) {
    n.push_back(NRule(kNPre, {NIfname(true, false, name), L4(IPPROTO_TCP)},
                      Stmt(S::kRedirect, "", kOutboundPort)));
    n.push_back(NRule(kNPre, {NIfname(true, false, name), L4(IPPROTO_TCP)}, Stmt(S::kReturn)));
  }
  if (!ingress) {
    n.push_back(NRule(kNPre, {L4(IPPROTO_TCP), NAddr(kV4, true, false, snat4, false)}, Stmt(S::kAccept)));
    if (v6) {
      n.push_back(NRule(kNPre, {L4(IPPROTO_TCP), NAddr(kV6, true, false, snat6, false)}, Stmt(S::kAccept)));
    }
  }
  n.push_back(NRule(kNOut, {L4(IPPROTO_TCP), NAddr(kV4, false, false, snat4, false)}, Stmt(S::kAccept)));
  if (v6) {
    n.push_back(NRule(kNOut, {L4(IPPROTO_TCP), NAddr(kV6, false, false, snat6, false)}, Stmt(S::kAccept)));
  }
  if (!ingress) {
    n.push_back(NRule(kNPre,
                      {NAddr(kV4, false, true, "127.0.0.1", true),
                       NPort(IPPROTO_TCP, false, true, kInboundHbonePort),
                       NMark(M::kMarkAndWide, true, kInpodMark, kInpodMask)},
                      Stmt(S::kRedirect, "", kInboundPlaintextPort)));
    if (v6) {
      n.push_back(NRule(kNPre,
                        {NAddr(kV6, false, true, "::1", true),
                         NPort(IPPROTO_TCP, false, true, kInboundHbonePort),
                         NMark(M::kMarkAnd, true, kInpodMark, kInpodMask)},
                        Stmt(S::kRedirect, "", kInboundPlaintextPort)));
    }
  }
  if (dns) {
    n.push_back(NRule(kNOut,
                      {NIfname(false, true, "lo"), NMark(M::kMarkAnd, true, kInpodMark, kInpodMask),
                       NPort(IPPROTO_UDP, false, false, 53)},
                      Stmt(S::kRedirect, "", kDnsCapturePort)));
    n.push_back(NRule(kNOut,
                      {NAddr(kV4, false, true, "127.0.0.1", true), NPort(IPPROTO_TCP, false, false, 53),
                       NMark(M::kMarkAnd, true, kInpodMark, kInpodMask)},
                      Stmt(S::kRedirect, "", kDnsCapturePort)));
    if (v6) {
      n.push_back(NRule(kNOut,
                        {NAddr(kV6, false, true, "::1", true), NPort(IPPROTO_TCP, false, false, 53),
                         NMark(M::kMarkAnd, true, kInpodMark, kInpodMask)},
                        Stmt(S::kRedirect, "", kDnsCapturePort)));
    }
  }
  n.push_back(NRule(kNOut, {L4(IPPROTO_TCP), NMark(M::kMarkAnd, false, kInpodTproxyMark, kInpodTproxyMask)},
                    Stmt(S::kAccept)));
  n.push_back(NRule(kNOut, {NIfname(false, false, "lo"), NAddr(kV4, false, true, "127.0.0.1", true)},
                    Stmt(S::kAccept)));
  if (v6) {
    n.push_back(NRule(kNOut, {NIfname(false, false, "lo"), NAddr(kV6, false, true, "::1", true)},
                      Stmt(S::kAccept)));
  }
  n.push_back(NRule(kNOut,
                    {L4(IPPROTO_TCP), NAddr(kV4, false, true, "127.0.0.1", true),
                     NMark(M::kMarkAnd, true, kInpodMark, kInpodMask)},
                    Stmt(S::kRedirect, "", kOutboundPort)));
  if (v6) {
    n.push_back(NRule(kNOut,
                      {L4(IPPROTO_TCP), NAddr(kV6, false, true, "::1", true),
                       NMark(M::kMarkAnd, true, kInpodMark, kInpodMask)},
                      Stmt(S::kRedirect, "", kOutboundPort)));
  }
  rs.tables.push_back(std::move(nat));

  NftTable mangle;
  mangle.name = kNftMangleTable;
  mangle.chains = {Base("prerouting", "filter", "prerouting", -150),
                   Base("output", "route", "output", -150), Regular(kNPre), Regular(kNOut)};
  mangle.rules.push_back(NJump("prerouting", kNPre));
  mangle.rules.push_back(NJump("output", kNOut));
  mangle.rules.push_back(NRule(kNPre, {NMark(M::kMetaMarkAmp, false, kInpodMark, kInpodMask)},
                               Stmt(S::kCtMarkSet, "", kInpodTproxyMark, ~kInpodTproxyMask)));
  NftTerm ctmark;
  ctmark.kind = NftTerm::Kind::kCtMark;
  ctmark.value = kInpodTproxyMark;
  ctmark.mask = kInpodTproxyMask;
  mangle.rules.push_back(NRule(kNOut, {ctmark}, Stmt(S::kMarkFromCtMark)));
  rs.tables.push_back(std::move(mangle));

  if (dns) {
    NftTable raw;
    raw.name = kNftRawTable;
    raw.chains = {Base("prerouting", "filter", "prerouting", -300),
                  Base("output", "filter", "output", -300), Regular(kNPre), Regular(kNOut)};
    raw.rules.push_back(NJump("prerouting", kNPre));
    raw.rules.push_back(NJump("output", kNOut));
    raw.rules.push_back(NRule(kNOut,
                              {NPort(IPPROTO_UDP, false, false, 53),
                               NMark(M::kMetaMarkAnd, false, kInpodMark, kInpodMask)},
                              Stmt(S::kCtZoneSet, "", kDnsCtZone)));
    raw.rules.push_back(NRule(kNPre,
                              {NPort(IPPROTO_UDP, true, false, 53),
                               NMark(M::kMetaMarkAnd, true, kInpodMark, kInpodMask)},
                              Stmt(S::kCtZoneSet, "", kDnsCtZone)));
    rs.tables.push_back(std::move(raw));
  }
  return rs;
}

NftRuleset HostNftables(const Config& config, uint32_t uid, const std::string& snat4,
                        const std::string& snat6) {
  NftRuleset rs;
  NftTable nat;
  nat.name = kNftNatTable;
  nat.chains = {Base("postrouting", "nat", "postrouting", 100)};
  nat.sets = {{kProbeSetV4, IpFamily::kIPv4}, {kProbeSetV6, IpFamily::kIPv6}};
  NftTerm skuid;
  skuid.kind = NftTerm::Kind::kSkuid;
  skuid.value = uid;
  auto add = [&](IpFamily family, const char* set, const std::string& snat) {
    NftTerm in_set;
  in_set.kind = NftTerm::Kind::kAddrInSet;
    in_set.family = family;
    in_set.text = set;
    NftStatement s = Stmt(NftStatement::Kind::kSnat, snat);
    s.family = family;
    nat.rules.push_back(NRule("postrouting", {L4(IPPROTO_TCP), skuid, in_set}, s));
  };
  add(IpFamily::kIPv4, kProbeSetV4, snat4);
  if (config.ipv6) add(IpFamily::kIPv6, kProbeSetV6, snat6);
  rs.tables.push_back(std::move(nat));
  return rs;
}

}  // namespace

bool IsBuiltinChain(const std::string& chain) {
  return chain == "PREROUTING" || chain == "INPUT" || chain == "FORWARD" || chain == "OUTPUT" ||
         chain == "POSTROUTING";
}

absl::StatusOr<std::vector<IptRuleset>> BuildIptables(const Config& config) {
  if (absl::Status s = Validate(config); !s.ok()) return s;
  absl::StatusOr<std::string> snat4 = CanonicalAddress(AF_INET, config.probe_snat_v4);
  absl::StatusOr<std::string> snat6 = CanonicalAddress(AF_INET6, config.probe_snat_v6);
  if (!snat4.ok()) return snat4.status();
  if (!snat6.ok()) return snat6.status();
  std::vector<IptRuleset> out;
  if (config.host) {
    out.push_back(HostIptables(IpFamily::kIPv4, *snat4));
    if (config.ipv6) out.push_back(HostIptables(IpFamily::kIPv6, *snat6));
  } else {
    out.push_back(InpodIptables(config, IpFamily::kIPv4, *snat4));
    if (config.ipv6) out.push_back(InpodIptables(config, IpFamily::kIPv6, *snat6));
  }
  return out;
}

absl::StatusOr<NftRuleset> BuildNftables(const Config& config) {
  if (absl::Status s = Validate(config); !s.ok()) return s;
  absl::StatusOr<std::string> snat4 = CanonicalAddress(AF_INET, config.probe_snat_v4);
  absl::StatusOr<std::string> snat6 = CanonicalAddress(AF_INET6, config.probe_snat_v6);
  if (!snat4.ok()) return snat4.status();
  if (!snat6.ok()) return snat6.status();
  if (!config.host) return InpodNftables(config, *snat4, *snat6);
  uint32_t uid;
  if (config.kubelet_uid.has_value()) {
    uid = *config.kubelet_uid;
  } else {
    absl::StatusOr<uint32_t> found = DetectKubeletUid();
    if (!found.ok()) {
      return absl::NotFoundError(absl::StrCat(
          "nftables host rules need the kubelet UID: ", found.status().message(),
          " (pass it explicitly)"));
    }
    uid = *found;
  }
  return HostNftables(config, uid, *snat4, *snat6);
}

absl::StatusOr<uint32_t> DetectKubeletUid(const std::string& proc_root) {
  DIR* dir = opendir(proc_root.c_str());
  if (dir == nullptr) return absl::NotFoundError(absl::StrCat("cannot read ", proc_root));
  absl::StatusOr<uint32_t> result = absl::NotFoundError("no kubelet, kubelite or k3s process");
  while (struct dirent* entry = readdir(dir)) {
    uint32_t pid;
    if (!absl::SimpleAtoi(entry->d_name, &pid)) continue;
    std::string base = absl::StrCat(proc_root, "/", entry->d_name);
    std::ifstream comm_file(base + "/comm");
    std::string comm;
    if (!std::getline(comm_file, comm)) continue;
    if (comm != "kubelet" && comm != "kubelite" && comm != "k3s") continue;
    struct stat st;
    if (stat(base.c_str(), &st) != 0) continue;
    result = static_cast<uint32_t>(st.st_uid);
    break;
  }
  closedir(dir);
  return result;
}

}  // namespace ambient::redirect
