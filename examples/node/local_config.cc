#include "local_config.h"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ambient/authz/policy_codec.h"
#include "ambient/base/read_file.h"

namespace ambient::examples {
namespace {

using runtime::GatewayAddress;
using runtime::LoadBalancing;
using runtime::Service;
using runtime::Workload;

absl::Status Bad(const std::string& where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

// Fields reads one YAML mapping with a fixed set of keys.
class Fields {
 public:
  Fields(const YAML::Node& node, std::string where) : node_(node), where_(std::move(where)) {}
  // Lookups go through a const node: yaml-cpp's non-const operator[] would
  // add the key.

  // Check fails on a node that is not a mapping or has a key outside
  // `known`.
  absl::Status Check(std::initializer_list<const char*> known) const {
    if (!node_.IsMap()) return Bad(where_, "want a mapping");
    std::set<std::string> k(known.begin(), known.end());
    for (const auto& kv : node_) {
      if (!kv.first.IsScalar()) return Bad(where_, "keys must be strings");
      std::string key = kv.first.Scalar();
      if (k.count(key) == 0) return Bad(where_, absl::StrCat("unknown field \"", key, "\""));
    }
    return absl::OkStatus();
  }

  YAML::Node Get(const char* key) const { return node_[key]; }
  bool Has(const char* key) const {
    YAML::Node n = node_[key];
    return n.IsDefined() && !n.IsNull();
  }
  std::string At(const char* key) const { return absl::StrCat(where_, ".", key); }

  absl::Status String(const char* key, std::string* out, bool required = false) const {
    YAML::Node n = node_[key];
    if (!n.IsDefined() || n.IsNull()) {
      return required ? Bad(At(key), "required") : absl::OkStatus();
    }
    if (!n.IsScalar()) return Bad(At(key), "want a string");
    *out = n.Scalar();
    return absl::OkStatus();
  }
  absl::Status Bool(const char* key, bool* out) const {
    YAML::Node n = node_[key];
    if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
    if (!n.IsScalar() || (n.Scalar() != "true" && n.Scalar() != "false")) {
      return Bad(At(key), "want true or false");
    }
    *out = n.Scalar() == "true";
    return absl::OkStatus();
  }
  absl::Status Uint(const char* key, uint64_t max, uint64_t* out) const {
    YAML::Node n = node_[key];
    if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
    return UintOf(n, At(key), max, out);
  }
  absl::Status Strings(const char* key, std::vector<std::string>* out) const {
    YAML::Node n = node_[key];
    if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
    if (!n.IsSequence()) return Bad(At(key), "want a list of strings");
    for (size_t i = 0; i < n.size(); ++i) {
      if (!n[i].IsScalar()) return Bad(absl::StrCat(At(key), "[", i, "]"), "want a string");
      out->push_back(n[i].Scalar());
    }
    return absl::OkStatus();
  }
  // Enum reads one of `names` into its index.
  absl::Status Enum(const char* key, std::initializer_list<const char*> names, int* out) const {
    std::string s;
    if (absl::Status st = String(key, &s); !st.ok() || s.empty()) return st;
    int i = 0;
    for (const char* n : names) {
      if (s == n) {
        *out = i;
        return absl::OkStatus();
      }
      ++i;
    }
    return Bad(At(key), absl::StrCat("unknown value \"", s, "\""));
  }

  static absl::Status UintOf(const YAML::Node& n, const std::string& where, uint64_t max,
                             uint64_t* out) {
    uint64_t v = 0;
    if (!n.IsScalar() || !absl::SimpleAtoi(n.Scalar(), &v) || v > max) {
      return Bad(where, absl::StrCat("want a number from 0 to ", max));
    }
    *out = v;
    return absl::OkStatus();
  }

 private:
  const YAML::Node node_;
  std::string where_;
};

// PortMap reads {port: target}.
absl::Status PortMap(const YAML::Node& n, const std::string& where,
                     std::map<uint16_t, uint16_t>* out) {
  if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
  if (!n.IsMap()) return Bad(where, "want a mapping of port: target port");
  for (const auto& kv : n) {
    uint64_t port = 0;
    uint64_t target = 0;
    if (absl::Status st = Fields::UintOf(kv.first, where, 65535, &port); !st.ok()) return st;
    if (absl::Status st = Fields::UintOf(kv.second, absl::StrCat(where, ".", port), 65535, &target);
        !st.ok()) {
      return st;
    }
    (*out)[static_cast<uint16_t>(port)] = static_cast<uint16_t>(target);
  }
  return absl::OkStatus();
}

absl::Status Gateway(const YAML::Node& n, const std::string& where,
                     std::optional<GatewayAddress>* out) {
  if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
  Fields f(n, where);
  if (absl::Status st = f.Check({"destination", "hboneMtlsPort"}); !st.ok()) return st;
  std::string dest;
  if (absl::Status st = f.String("destination", &dest, true); !st.ok()) return st;
  uint64_t port = 15008;
  if (absl::Status st = f.Uint("hboneMtlsPort", 65535, &port); !st.ok()) return st;
  GatewayAddress g;
  g.hbone_mtls_port = static_cast<uint16_t>(port);
  // Untagged, as ztunnel reads it: a network address first, else a
  // namespaced hostname.
  if (absl::StatusOr<runtime::NetworkAddress> a = runtime::ParseNetworkAddress(dest); a.ok()) {
    g.address = *a;
  } else {
    size_t slash = dest.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == dest.size()) {
      return Bad(f.At("destination"), "want \"network/IP\" or \"namespace/hostname\"");
    }
    g.hostname_namespace = dest.substr(0, slash);
    g.hostname = dest.substr(slash + 1);
  }
  *out = std::move(g);
  return absl::OkStatus();
}

absl::Status ParseWorkload(const YAML::Node& n, const std::string& where, Workload* w) {
  Fields f(n, where);
  if (absl::Status st = f.Check({"uid",
                                 "name",
                                 "namespace",
                                 "workloadIps",
                                 "protocol",
                                 "trustDomain",
                                 "serviceAccount",
                                 "network",
                                 "workloadName",
                                 "workloadType",
                                 "canonicalName",
                                 "canonicalRevision",
                                 "hostname",
                                 "node",
                                 "nativeTunnel",
                                 "authorizationPolicies",
                                 "status",
                                 "clusterId",
                                 "locality",
                                 "capacity",
                                 "networkMode",
                                 "applicationTunnel",
                                 "waypoint",
                                 "networkGateway",
                                 "services"});
      !st.ok()) {
    return st;
  }
  for (const char* unsupported : {"networkGateway", "applicationTunnel"}) {
    if (f.Has(unsupported)) return Bad(f.At(unsupported), "not supported");
  }
  std::string ignored;
  bool ignored_bool = false;
  for (auto [key, out] : std::vector<std::pair<const char*, std::string*>>{
           {"uid", &w->uid},
           {"name", &w->name},
           {"trustDomain", &w->trust_domain},
           {"serviceAccount", &w->service_account},
           {"network", &w->network},
           {"canonicalName", &w->canonical_service},
           {"canonicalRevision", &w->canonical_revision},
           {"node", &w->node},
           {"clusterId", &w->cluster},
           {"workloadName", &ignored},
           {"workloadType", &ignored},
           {"hostname", &ignored},
           {"networkMode", &ignored}}) {
    if (absl::Status st = f.String(key, out); !st.ok()) return st;
  }
  if (absl::Status st = f.String("namespace", &w->ns, true); !st.ok()) return st;
  if (absl::Status st = f.Bool("nativeTunnel", &ignored_bool); !st.ok()) return st;
  if (w->trust_domain.empty()) w->trust_domain = "cluster.local";
  if (w->service_account.empty()) w->service_account = "default";
  if (!f.Has("workloadIps")) return Bad(f.At("workloadIps"), "required");
  if (absl::Status st = f.Strings("workloadIps", &w->addresses); !st.ok()) return st;
  int protocol = 0;
  if (absl::Status st = f.Enum("protocol", {"TCP", "HBONE"}, &protocol); !st.ok()) return st;
  w->hbone = protocol == 1;
  int status = 0;
  if (absl::Status st = f.Enum("status", {"Healthy", "Unhealthy"}, &status); !st.ok()) return st;
  w->healthy = status == 0;
  uint64_t capacity = 1;
  if (absl::Status st = f.Uint("capacity", UINT32_MAX, &capacity); !st.ok()) return st;
  w->capacity = static_cast<uint32_t>(capacity);
  if (absl::Status st = f.Strings("authorizationPolicies", &w->policies); !st.ok()) return st;
  if (f.Has("locality")) {
    Fields loc(f.Get("locality"), f.At("locality"));
    if (absl::Status st = loc.Check({"region", "zone", "subzone"}); !st.ok()) return st;
    if (absl::Status st = loc.String("region", &w->locality.region); !st.ok()) return st;
    if (absl::Status st = loc.String("zone", &w->locality.zone); !st.ok()) return st;
    if (absl::Status st = loc.String("subzone", &w->locality.subzone); !st.ok()) return st;
  }
  if (absl::Status st = Gateway(f.Get("waypoint"), f.At("waypoint"), &w->waypoint); !st.ok()) {
    return st;
  }
  if (f.Has("services")) {
    YAML::Node svcs = f.Get("services");
    if (!svcs.IsMap()) return Bad(f.At("services"), "want a mapping of \"ns/host\": ports");
    for (const auto& kv : svcs) {
      if (!kv.first.IsScalar()) return Bad(f.At("services"), "keys must be strings");
      std::string key = kv.first.Scalar();
      std::string at = absl::StrCat(f.At("services"), ".", key);
      size_t slash = key.find('/');
      if (slash == std::string::npos || slash == 0 || slash + 1 == key.size()) {
        return Bad(at, "want a \"namespace/hostname\" key");
      }
      if (absl::Status st = PortMap(kv.second, at, &w->services[key]); !st.ok()) return st;
    }
  }
  if (w->name.empty()) return Bad(f.At("name"), "required");
  if (w->uid.empty()) w->uid = absl::StrCat("cluster//v1/Pod/", w->ns, "/", w->name);
  return absl::OkStatus();
}

absl::Status ParseService(const YAML::Node& n, const std::string& where, Service* s) {
  Fields f(n, where);
  if (absl::Status st = f.Check({"name", "namespace", "hostname", "vips", "ports",
                                 "subjectAltNames", "waypoint", "weightedWaypoints", "loadBalancer",
                                 "ipFamilies", "canonical", "visibility", "cidrVips", "endpoints"});
      !st.ok()) {
    return st;
  }
  for (const char* unsupported : {"weightedWaypoints", "cidrVips"}) {
    if (f.Has(unsupported)) return Bad(f.At(unsupported), "not supported");
  }
  if (absl::Status st = f.String("name", &s->name, true); !st.ok()) return st;
  if (absl::Status st = f.String("namespace", &s->ns, true); !st.ok()) return st;
  if (absl::Status st = f.String("hostname", &s->hostname, true); !st.ok()) return st;
  std::vector<std::string> vips;
  if (!f.Has("vips")) return Bad(f.At("vips"), "required");
  if (absl::Status st = f.Strings("vips", &vips); !st.ok()) return st;
  for (size_t i = 0; i < vips.size(); ++i) {
    absl::StatusOr<runtime::NetworkAddress> a = runtime::ParseNetworkAddress(vips[i]);
    if (!a.ok()) return Bad(absl::StrCat(f.At("vips"), "[", i, "]"), a.status().message());
    s->vips.push_back(*a);
  }
  if (!f.Has("ports")) return Bad(f.At("ports"), "required");
  if (absl::Status st = PortMap(f.Get("ports"), f.At("ports"), &s->ports); !st.ok()) return st;
  if (absl::Status st = f.Strings("subjectAltNames", &s->subject_alt_names); !st.ok()) return st;
  if (absl::Status st = Gateway(f.Get("waypoint"), f.At("waypoint"), &s->waypoint); !st.ok()) {
    return st;
  }
  std::string ignored;
  bool ignored_bool = false;
  if (absl::Status st = f.String("ipFamilies", &ignored); !st.ok()) return st;
  if (absl::Status st = f.String("visibility", &ignored); !st.ok()) return st;
  if (absl::Status st = f.Bool("canonical", &ignored_bool); !st.ok()) return st;
  if (f.Has("loadBalancer")) {
    Fields lb(f.Get("loadBalancer"), f.At("loadBalancer"));
    if (absl::Status st = lb.Check({"routingPreferences", "mode", "healthPolicy"}); !st.ok()) {
      return st;
    }
    LoadBalancing out;
    std::vector<std::string> prefs;
    if (absl::Status st = lb.Strings("routingPreferences", &prefs); !st.ok()) return st;
    const char* scopes[] = {"Region", "Zone", "Subzone", "Node", "Cluster", "Network"};
    for (size_t i = 0; i < prefs.size(); ++i) {
      int found = -1;
      for (int j = 0; j < 6; ++j) {
        if (prefs[i] == scopes[j]) found = j;
      }
      if (found < 0) {
        return Bad(absl::StrCat(lb.At("routingPreferences"), "[", i, "]"),
                   absl::StrCat("unknown scope \"", prefs[i], "\""));
      }
      out.routing_preference.push_back(static_cast<LoadBalancing::Scope>(found));
    }
    int mode = 0;
    if (absl::Status st = lb.Enum("mode", {"Standard", "Strict", "Failover", "Passthrough"}, &mode);
        !st.ok()) {
      return st;
    }
    out.mode = static_cast<LoadBalancing::Mode>(mode);
    int health = 0;
    if (absl::Status st = lb.Enum("healthPolicy", {"OnlyHealthy", "AllowAll"}, &health); !st.ok()) {
      return st;
    }
    out.allow_unhealthy = health == 1;
    s->load_balancing = out;
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Policies

absl::Status StringMatches(const YAML::Node& n, const std::string& where,
                           std::vector<authz::StringMatch>* out) {
  if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
  if (!n.IsSequence()) return Bad(where, "want a list of string matches");
  for (size_t i = 0; i < n.size(); ++i) {
    std::string at = absl::StrCat(where, "[", i, "]");
    if (!n[i].IsMap() || n[i].size() != 1) {
      return Bad(at, "want one of {Exact|Prefix|Suffix: s} or {Presence: []}");
    }
    auto kv = *n[i].begin();
    std::string kind = kv.first.Scalar();
    if (kind == "Presence") {
      out->push_back(authz::StringMatch::Presence());
      continue;
    }
    if (!kv.second.IsScalar()) return Bad(at, "want a string value");
    std::string v = kv.second.Scalar();
    if (kind == "Exact") {
      out->push_back(authz::StringMatch::Exact(v));
    } else if (kind == "Prefix") {
      out->push_back(authz::StringMatch::Prefix(v));
    } else if (kind == "Suffix") {
      out->push_back(authz::StringMatch::Suffix(v));
    } else {
      return Bad(at, absl::StrCat("unknown string match \"", kind, "\""));
    }
  }
  return absl::OkStatus();
}

absl::Status Prefixes(const Fields& f, const char* key, std::vector<authz::IpPrefix>* out) {
  std::vector<std::string> v;
  if (absl::Status st = f.Strings(key, &v); !st.ok()) return st;
  for (size_t i = 0; i < v.size(); ++i) {
    absl::StatusOr<authz::IpPrefix> p = authz::IpPrefix::Parse(v[i]);
    if (!p.ok()) return Bad(absl::StrCat(f.At(key), "[", i, "]"), p.status().message());
    out->push_back(*p);
  }
  return absl::OkStatus();
}

absl::Status Ports(const YAML::Node& n, const std::string& where, std::vector<uint16_t>* out) {
  if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
  if (!n.IsSequence()) return Bad(where, "want a list of ports");
  for (size_t i = 0; i < n.size(); ++i) {
    uint64_t p = 0;
    if (absl::Status st = Fields::UintOf(n[i], absl::StrCat(where, "[", i, "]"), 65535, &p);
        !st.ok()) {
      return st;
    }
    out->push_back(static_cast<uint16_t>(p));
  }
  return absl::OkStatus();
}

absl::Status Accounts(const YAML::Node& n, const std::string& where,
                      std::vector<authz::ServiceAccountMatch>* out) {
  if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
  if (!n.IsSequence()) return Bad(where, "want a list of {namespace, serviceAccount}");
  for (size_t i = 0; i < n.size(); ++i) {
    Fields f(n[i], absl::StrCat(where, "[", i, "]"));
    if (absl::Status st = f.Check({"namespace", "serviceAccount"}); !st.ok()) return st;
    authz::ServiceAccountMatch m;
    if (absl::Status st = f.String("namespace", &m.ns, true); !st.ok()) return st;
    if (absl::Status st = f.String("serviceAccount", &m.service_account, true); !st.ok()) {
      return st;
    }
    out->push_back(std::move(m));
  }
  return absl::OkStatus();
}

absl::Status LocalMatch(const YAML::Node& n, const std::string& where, authz::Match* m) {
  Fields f(n, where);
  if (absl::Status st =
          f.Check({"namespaces", "notNamespaces", "serviceAccounts", "notServiceAccounts",
                   "principals", "notPrincipals", "sourceIps", "notSourceIps", "destinationIps",
                   "notDestinationIps", "destinationPorts", "notDestinationPorts"});
      !st.ok()) {
    return st;
  }
  for (auto [key, out] : std::vector<std::pair<const char*, std::vector<authz::StringMatch>*>>{
           {"namespaces", &m->namespaces},
           {"notNamespaces", &m->not_namespaces},
           {"principals", &m->principals},
           {"notPrincipals", &m->not_principals}}) {
    if (absl::Status st = StringMatches(f.Get(key), f.At(key), out); !st.ok()) return st;
  }
  for (auto [key, out] : std::vector<std::pair<const char*, std::vector<authz::IpPrefix>*>>{
           {"sourceIps", &m->source_ips},
           {"notSourceIps", &m->not_source_ips},
           {"destinationIps", &m->destination_ips},
           {"notDestinationIps", &m->not_destination_ips}}) {
    if (absl::Status st = Prefixes(f, key, out); !st.ok()) return st;
  }
  if (absl::Status st =
          Ports(f.Get("destinationPorts"), f.At("destinationPorts"), &m->destination_ports);
      !st.ok()) {
    return st;
  }
  if (absl::Status st = Ports(f.Get("notDestinationPorts"), f.At("notDestinationPorts"),
                              &m->not_destination_ports);
      !st.ok()) {
    return st;
  }
  if (absl::Status st =
          Accounts(f.Get("serviceAccounts"), f.At("serviceAccounts"), &m->service_accounts);
      !st.ok()) {
    return st;
  }
  return Accounts(f.Get("notServiceAccounts"), f.At("notServiceAccounts"),
                  &m->not_service_accounts);
}

// ToJson turns a YAML node into JSON for authz::DecodePolicyJson: plain
// (unquoted) scalars that read as integers or booleans keep that type.
// Nesting deeper than a policy can be is cut off (and then refused by the
// decoder).
nlohmann::json ToJson(const YAML::Node& n, int depth = 0) {
  if (depth > 16) return nullptr;
  if (n.IsMap()) {
    nlohmann::json o = nlohmann::json::object();
    for (const auto& kv : n) o[kv.first.Scalar()] = ToJson(kv.second, depth + 1);
    return o;
  }
  if (n.IsSequence()) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& e : n) a.push_back(ToJson(e, depth + 1));
    return a;
  }
  if (n.IsNull() || !n.IsDefined()) return nullptr;
  const std::string& s = n.Scalar();
  if (n.Tag() == "?") {
    int64_t i = 0;
    if (absl::SimpleAtoi(s, &i)) return i;
    if (s == "true") return true;
    if (s == "false") return false;
  }
  return s;
}

// IsProtoJsonShape tells Istio's proto JSON (rules of {clauses}, SCREAMING
// enums) from ztunnel's shape (rules of [[match]], CamelCase enums).
bool IsProtoJsonShape(const YAML::Node& n) {
  // (A missing key reads as an invalid node: ask IsDefined first.)
  const YAML::Node rules = n["rules"];
  if (rules.IsDefined() && rules.IsSequence() && rules.size() > 0) return rules[0].IsMap();
  for (const char* key : {"scope", "action"}) {
    const YAML::Node v = n[key];
    if (v.IsDefined() && v.IsScalar() && v.Scalar() == absl::AsciiStrToUpper(v.Scalar()) &&
        absl::AsciiStrToLower(v.Scalar()) != v.Scalar()) {
      return true;
    }
  }
  return false;
}

absl::Status ParsePolicy(const YAML::Node& n, const std::string& where, authz::Policy* p) {
  if (!n.IsMap()) return Bad(where, "want a mapping");
  if (IsProtoJsonShape(n)) {
    std::string json;
    try {
      json = ToJson(n).dump();
    } catch (const nlohmann::json::exception&) {
      return Bad(where, "not valid UTF-8");  // nlohmann refuses to write it
    }
    absl::StatusOr<authz::Policy> decoded = authz::DecodePolicyJson(json);
    if (!decoded.ok()) return Bad(where, decoded.status().message());
    *p = std::move(*decoded);
    return absl::OkStatus();
  }
  Fields f(n, where);
  if (absl::Status st = f.Check({"name", "namespace", "scope", "action", "rules", "dryRun"});
      !st.ok()) {
    return st;
  }
  if (absl::Status st = f.String("name", &p->name, true); !st.ok()) return st;
  if (absl::Status st = f.String("namespace", &p->ns, true); !st.ok()) return st;
  int scope = 0;
  if (absl::Status st = f.Enum("scope", {"Global", "Namespace", "WorkloadSelector"}, &scope);
      !st.ok()) {
    return st;
  }
  p->scope = static_cast<authz::Scope>(scope);
  int action = 0;
  if (absl::Status st = f.Enum("action", {"Allow", "Deny"}, &action); !st.ok()) return st;
  p->action = static_cast<authz::Action>(action);
  if (absl::Status st = f.Bool("dryRun", &p->dry_run); !st.ok()) return st;
  YAML::Node rules = f.Get("rules");
  if (!rules.IsDefined() || rules.IsNull()) return absl::OkStatus();
  if (!rules.IsSequence()) return Bad(f.At("rules"), "want a list of rules");
  for (size_t r = 0; r < rules.size(); ++r) {
    std::string rat = absl::StrCat(f.At("rules"), "[", r, "]");
    if (!rules[r].IsSequence()) return Bad(rat, "want a list of clauses");
    authz::Rule rule;
    for (size_t c = 0; c < rules[r].size(); ++c) {
      std::string cat = absl::StrCat(rat, "[", c, "]");
      YAML::Node clause = rules[r][c];
      if (!clause.IsSequence()) return Bad(cat, "want a list of matches");
      authz::Clause out;
      for (size_t m = 0; m < clause.size(); ++m) {
        authz::Match match;
        if (absl::Status st = LocalMatch(clause[m], absl::StrCat(cat, "[", m, "]"), &match);
            !st.ok()) {
          return st;
        }
        out.matches.push_back(std::move(match));
      }
      rule.clauses.push_back(std::move(out));
    }
    p->rules.push_back(std::move(rule));
  }
  return absl::OkStatus();
}

absl::StatusOr<LocalConfig> ParseRoot(const YAML::Node& root, const std::string& name) {
  LocalConfig config;
  if (!root.IsDefined() || root.IsNull()) return config;  // an empty file: nothing
  Fields top(root, name);
  if (absl::Status st = top.Check({"workloads", "services", "policies"}); !st.ok()) return st;
  runtime::WorkloadDirectory check;
  for (const char* key : {"services", "workloads", "policies"}) {
    YAML::Node list = top.Get(key);
    if (!list.IsDefined() || list.IsNull()) continue;
    if (!list.IsSequence()) return Bad(top.At(key), "want a list");
    for (size_t i = 0; i < list.size(); ++i) {
      std::string where = absl::StrCat(key, "[", i, "]");
      if (std::string(key) == "workloads") {
        Workload w;
        if (absl::Status st = ParseWorkload(list[i], where, &w); !st.ok()) return st;
        if (absl::Status st = check.Upsert(w); !st.ok()) return Bad(where, st.message());
        config.workloads.push_back(std::move(w));
      } else if (std::string(key) == "services") {
        Service s;
        if (absl::Status st = ParseService(list[i], where, &s); !st.ok()) return st;
        if (check.ServiceByHostname(s.ns, s.hostname)) {
          return Bad(where, absl::StrCat("service ", s.Key(), " twice"));
        }
        if (absl::Status st = check.UpsertService(s); !st.ok()) return Bad(where, st.message());
        config.services.push_back(std::move(s));
      } else {
        authz::Policy p;
        if (absl::Status st = ParsePolicy(list[i], where, &p); !st.ok()) return st;
        config.policies.push_back(std::move(p));
      }
    }
  }
  return config;
}

}  // namespace

absl::StatusOr<LocalConfig> ParseLocalConfig(absl::string_view text, const std::string& name) {
  if (text.find('\0') != absl::string_view::npos) return Bad(name, "NUL byte in the text");
  try {
    YAML::Node root = YAML::Load(std::string(text));
    return ParseRoot(root, name);
  } catch (const YAML::Exception& e) {
    return Bad(name, absl::StrCat("not valid YAML: ", e.what()));
  }
}

absl::StatusOr<LocalConfig> LoadLocalConfig(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileBounded(path, kMaxFileSize, "local config");
  if (!text.ok()) return text.status();
  return ParseLocalConfig(*text, path);
}

}  // namespace ambient::examples
