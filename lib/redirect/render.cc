#include "ambient/redirect/render.h"

#include <netinet/in.h>

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ambient::redirect {
namespace {

std::string Hex(uint32_t v) { return absl::StrCat("0x", absl::Hex(v)); }

const char* ProtoName(uint8_t proto) { return proto == IPPROTO_UDP ? "udp" : "tcp"; }

// ---- iptables ----

void AppendTerm(std::vector<std::string>& out, const IptTerm& t) {
  using K = IptTerm::Kind;
  const char* bang = t.negate ? "! " : "";
  switch (t.kind) {
    case K::kSource: out.push_back(absl::StrCat(bang, "-s ", t.text)); break;
    case K::kDestination: out.push_back(absl::StrCat(bang, "-d ", t.text)); break;
    case K::kInInterface: out.push_back(absl::StrCat(bang, "-i ", t.text)); break;
    case K::kOutInterface: out.push_back(absl::StrCat(bang, "-o ", t.text)); break;
    case K::kProtocol:
      out.push_back(absl::StrCat("-p ", t.text));
      if (t.with_module) out.push_back(absl::StrCat("-m ", t.text));
      break;
    case K::kDport:
    case K::kSport:
      if (t.with_module) out.push_back(absl::StrCat("-m ", t.module));
      out.push_back(absl::StrCat(bang, t.kind == K::kDport ? "--dport " : "--sport ", t.value));
      break;
    case K::kMark:
      out.push_back(absl::StrCat("-m mark ", bang, "--mark ", Hex(t.value), "/", Hex(t.mask)));
      break;
    case K::kConnmark:
      out.push_back(absl::StrCat("-m connmark ", bang, "--mark ", Hex(t.value), "/", Hex(t.mask)));
      break;
    case K::kSocketExists: out.push_back("-m owner --socket-exists"); break;
    case K::kMatchSetDst: out.push_back(absl::StrCat("-m set --match-set ", t.text, " dst")); break;
  }
}

std::string TargetText(const IptTarget& t, bool save_form) {
  using K = IptTarget::Kind;
  switch (t.kind) {
    case K::kJump: return absl::StrCat("-j ", t.text);
    case K::kAccept: return "-j ACCEPT";
    case K::kReturn: return "-j RETURN";
    case K::kRedirect:
      return absl::StrCat("-j REDIRECT ", t.singular_port && !save_form ? "--to-port " : "--to-ports ",
                          t.value);
    case K::kConnmarkSet:
      return absl::StrCat("-j CONNMARK --set-xmark ", Hex(t.value), "/", Hex(t.mask));
    case K::kConnmarkRestore:
      return absl::StrCat("-j CONNMARK --restore-mark --nfmask ", Hex(t.mask), " --ctmask ",
                          Hex(t.mask));
    case K::kCtZone: return absl::StrCat("-j CT --zone ", t.value);
    case K::kSnat: return absl::StrCat("-j SNAT --to-source ", t.text);
  }
  return "";
}

std::string Head(const IptRule& rule, bool save_form) {
  if (rule.insert_position > 0 && !save_form) {
    return absl::StrCat("-I ", rule.chain, " ", rule.insert_position);
  }
  return absl::StrCat("-A ", rule.chain);
}

// ---- nftables ----

std::string NftAddr(const NftTerm& t) {
  std::string out = absl::StrCat(t.family == IpFamily::kIPv4 ? "ip " : "ip6 ",
                                 t.is_source ? "saddr " : "daddr ", t.negate ? "!= " : "", t.text);
  if (t.with_prefix) absl::StrAppend(&out, t.family == IpFamily::kIPv4 ? "/32" : "/128");
  return out;
}

std::string NftTermText(const NftTerm& t) {
  using K = NftTerm::Kind;
  using M = NftTerm::MarkStyle;
  const char* op = t.negate ? "!=" : "==";
  switch (t.kind) {
    case K::kL4Proto: return absl::StrCat("meta l4proto ", ProtoName(t.proto));
    case K::kAddr: return NftAddr(t);
    case K::kAddrInSet:
      return absl::StrCat(t.family == IpFamily::kIPv4 ? "ip" : "ip6", " daddr @", t.text);
    case K::kPort:
      return absl::StrCat(ProtoName(t.proto), t.is_source ? " sport " : " dport ",
                          t.negate ? "!= " : "", t.value);
    case K::kMark:
      switch (t.mark_style) {
        case M::kMarkAnd: return absl::StrCat("mark and ", Hex(t.mask), " ", op, " ", Hex(t.value));
        case M::kMarkAndWide:
          return absl::StrCat("mark and ", Hex(t.mask), "  ", op, " ", Hex(t.value));
        case M::kMetaMarkAmp:
          return absl::StrCat("meta mark & ", Hex(t.mask), " ", op, " ", Hex(t.value));
        case M::kMetaMarkAnd:
          return absl::StrCat("meta mark and ", Hex(t.mask), " ", op, " ", Hex(t.value));
      }
      return "";
    case K::kCtMark: return absl::StrCat("ct mark and ", Hex(t.mask), " ", op, " ", Hex(t.value));
    case K::kIfname:
      return absl::StrCat(t.is_source ? "iifname " : "oifname ", t.negate ? "!= " : "", t.text);
    case K::kSkuid: return absl::StrCat("skuid ", t.value);
  }
  return "";
}

std::string NftStatementText(const NftStatement& s) {
  using K = NftStatement::Kind;
  switch (s.kind) {
    case K::kJump: return absl::StrCat("jump ", s.text);
    case K::kAccept: return "accept";
    case K::kReturn: return "return";
    case K::kRedirect: return absl::StrCat("redirect to :", s.value);
    case K::kCtMarkSet:
      return absl::StrCat("ct mark set ct mark & ", Hex(s.mask), " |  ", Hex(s.value));
    case K::kMarkFromCtMark: return "meta mark set ct mark";
    case K::kCtZoneSet: return absl::StrCat("ct zone set ", s.value);
    case K::kSnat: return absl::StrCat("snat to ", s.text);
  }
  return "";
}

}  // namespace

std::string RenderIptablesRule(const IptRule& rule) {
  std::vector<std::string> parts = {Head(rule, false)};
  for (const IptTerm& t : rule.terms) AppendTerm(parts, t);
  parts.push_back(TargetText(rule.target, false));
  return absl::StrJoin(parts, " ");
}

std::string SaveFormOf(const IptRule& rule, IpFamily family) {
  using K = IptTerm::Kind;
  std::vector<std::string> parts = {Head(rule, true)};
  // iptables-save prints -s, -d, -i, -o, -p first, then the matches in order.
  const K generic[] = {K::kSource, K::kDestination, K::kInInterface, K::kOutInterface};
  for (K kind : generic) {
    for (const IptTerm& t : rule.terms) {
      if (t.kind != kind) continue;
      IptTerm copy = t;
      if ((kind == K::kSource || kind == K::kDestination) &&
          copy.text.find('/') == std::string::npos) {
        absl::StrAppend(&copy.text, family == IpFamily::kIPv4 ? "/32" : "/128");
      }
      AppendTerm(parts, copy);
    }
  }
  std::string proto;
  for (const IptTerm& t : rule.terms) {
    if (t.kind == K::kProtocol) {
      parts.push_back(absl::StrCat("-p ", t.text));
      proto = t.text;
    }
  }
  for (const IptTerm& t : rule.terms) {
    switch (t.kind) {
      case K::kSource:
      case K::kDestination:
      case K::kInInterface:
      case K::kOutInterface:
        break;
      case K::kProtocol:
        if (t.with_module) parts.push_back(absl::StrCat("-m ", t.text));
        break;
      case K::kDport:
      case K::kSport: {
        IptTerm copy = t;
        if (!copy.with_module) {
          copy.with_module = true;
          copy.module = proto;
        }
        AppendTerm(parts, copy);
        break;
      }
      default: AppendTerm(parts, t);
    }
  }
  parts.push_back(TargetText(rule.target, true));
  return absl::StrJoin(parts, " ");
}

std::string RenderIptables(const IptRuleset& ruleset) {
  std::set<std::string> tables;
  for (const IptRule& r : ruleset.rules) tables.insert(r.table);
  std::vector<std::string> lines;
  for (const std::string& table : tables) {
    lines.push_back(absl::StrCat("* ", table));
    std::vector<std::string> declared;
    auto declare = [&](const std::string& chain) {
      if (IsBuiltinChain(chain)) return;
      if (std::find(declared.begin(), declared.end(), chain) != declared.end()) return;
      declared.push_back(chain);
    };
    for (const IptRule& r : ruleset.rules) {
      if (r.table == table) declare(r.chain);
    }
    for (const IptRule& r : ruleset.rules) {
      if (r.table == table && r.target.kind == IptTarget::Kind::kJump) declare(r.target.text);
    }
    for (const std::string& chain : declared) lines.push_back(absl::StrCat("-N ", chain));
    for (const IptRule& r : ruleset.rules) {
      if (r.table == table) lines.push_back(RenderIptablesRule(r));
    }
    lines.push_back("COMMIT");
  }
  return absl::StrJoin(lines, "\n");
}

std::string RenderNftRule(const NftRule& rule) {
  std::vector<std::string> parts = {rule.chain};
  for (const NftTerm& t : rule.terms) parts.push_back(NftTermText(t));
  if (rule.counter) parts.push_back("counter");
  parts.push_back(NftStatementText(rule.statement));
  return absl::StrJoin(parts, " ");
}

std::string RenderNftables(const NftRuleset& ruleset) {
  std::string out;
  for (const NftTable& table : ruleset.tables) {
    const std::string prefix = absl::StrCat("inet ", table.name);
    absl::StrAppend(&out, "add table ", prefix, "\n", "flush table ", prefix, "\n");
    for (const NftChain& c : table.chains) {
      if (c.base) {
        absl::StrAppend(&out, "add chain ", prefix, " ", c.name, " { type ", c.type, " hook ", c.hook,
                        " priority ", c.priority, " ; }\n");
      } else {
        absl::StrAppend(&out, "add chain ", prefix, " ", c.name, "\n");
      }
    }
    for (const NftRule& r : table.rules) {
      absl::StrAppend(&out, "add rule ", prefix, " ", RenderNftRule(r), "\n");
    }
  }
  return out;
}

absl::StatusOr<std::string> Render(const Config& config) {
  if (config.backend == Backend::kNftables) {
    absl::StatusOr<NftRuleset> rs = BuildNftables(config);
    if (!rs.ok()) return rs.status();
    return RenderNftables(*rs);
  }
  absl::StatusOr<std::vector<IptRuleset>> sets = BuildIptables(config);
  if (!sets.ok()) return sets.status();
  std::vector<std::string> payloads;
  for (const IptRuleset& rs : *sets) payloads.push_back(RenderIptables(rs));
  return absl::StrJoin(payloads, "\n");
}

absl::StatusOr<std::string> RenderFamily(const Config& config, IpFamily family) {
  if (config.backend == Backend::kNftables) {
    return absl::InvalidArgumentError(
        "a family of its own exists only for iptables: the nftables script (inet table) "
        "covers IPv4 and IPv6 at once");
  }
  if (family == IpFamily::kIPv6 && !config.ipv6) {
    return absl::InvalidArgumentError("IPv6 rules need the ipv6 setting (--ipv6)");
  }
  absl::StatusOr<std::vector<IptRuleset>> sets = BuildIptables(config);
  if (!sets.ok()) return sets.status();
  const size_t index = family == IpFamily::kIPv4 ? 0 : 1;
  if (sets->size() <= index) return absl::InternalError("no ruleset for the family");
  return RenderIptables((*sets)[index]) + "\n";
}

}  // namespace ambient::redirect
