#include "config_dump.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <memory>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "ambient/base/read_file.h"
#include "ambient/base/tls.h"

namespace ambient::examples {

namespace {

using Json = nlohmann::json;

Json Gateway(const runtime::GatewayAddress& g) {
  return Json{{"destination", g.ToString()}, {"hboneMtlsPort", g.hbone_mtls_port}};
}

// PortMap renders service port -> target port with the ports as keys (JSON
// keys are strings), as serde renders ztunnel's HashMap<u16, u16>.
Json PortMap(const std::map<uint16_t, uint16_t>& ports) {
  Json out = Json::object();
  for (const auto& [from, to] : ports) out[std::to_string(from)] = to;
  return out;
}

const char* Health(bool healthy) { return healthy ? "Healthy" : "Unhealthy"; }

Json RenderWorkload(const runtime::Workload& w) {
  Json j = Json::object();
  j["uid"] = w.uid;
  j["workloadIps"] = w.addresses;
  if (w.waypoint) j["waypoint"] = Gateway(*w.waypoint);
  j["protocol"] = w.hbone ? "HBONE" : "TCP";
  j["name"] = w.name;
  j["namespace"] = w.ns;
  j["trustDomain"] = w.trust_domain;
  j["serviceAccount"] = w.service_account;
  if (!w.network.empty()) j["network"] = w.network;
  if (!w.canonical_service.empty()) j["canonicalName"] = w.canonical_service;
  if (!w.canonical_revision.empty()) j["canonicalRevision"] = w.canonical_revision;
  if (!w.node.empty()) j["node"] = w.node;
  if (!w.policies.empty()) j["authorizationPolicies"] = w.policies;
  j["status"] = Health(w.healthy);
  j["clusterId"] = w.cluster;
  if (!w.locality.region.empty() || !w.locality.zone.empty() || !w.locality.subzone.empty()) {
    j["locality"] = Json{
        {"region", w.locality.region}, {"zone", w.locality.zone}, {"subzone", w.locality.subzone}};
  }
  if (!w.services.empty()) {
    Json services = Json::array();
    for (const auto& [key, ports] : w.services) services.push_back(key);
    j["services"] = std::move(services);
  }
  j["capacity"] = w.capacity;
  return j;
}

const char* ScopeName(runtime::LoadBalancing::Scope s) {
  using S = runtime::LoadBalancing::Scope;
  switch (s) {
    case S::kRegion:
      return "Region";
    case S::kZone:
      return "Zone";
    case S::kSubzone:
      return "Subzone";
    case S::kNode:
      return "Node";
    case S::kCluster:
      return "Cluster";
    case S::kNetwork:
      return "Network";
  }
  return "Unknown";
}

const char* ModeName(runtime::LoadBalancing::Mode m) {
  using M = runtime::LoadBalancing::Mode;
  switch (m) {
    case M::kStandard:
      return "Standard";
    case M::kStrict:
      return "Strict";
    case M::kFailover:
      return "Failover";
    case M::kPassthrough:
      return "Passthrough";
  }
  return "Unknown";
}

Json RenderService(const runtime::Service& s, const runtime::WorkloadDirectory::View& view) {
  Json j = Json::object();
  j["name"] = s.name;
  j["namespace"] = s.ns;
  j["hostname"] = s.hostname;
  Json vips = Json::array();
  for (const runtime::NetworkAddress& v : s.vips) vips.push_back(v.Key());
  j["vips"] = std::move(vips);
  j["ports"] = PortMap(s.ports);
  Json endpoints = Json::object();
  for (const runtime::Workload* w : view.Endpoints(s)) {
    auto mapping = w->services.find(s.Key());
    Json ports = mapping == w->services.end() ? Json::object() : PortMap(mapping->second);
    endpoints[w->uid] =
        Json{{"workloadUid", w->uid}, {"port", std::move(ports)}, {"status", Health(w->healthy)}};
  }
  j["endpoints"] = std::move(endpoints);
  j["subjectAltNames"] = s.subject_alt_names;
  if (s.waypoint) j["waypoint"] = Gateway(*s.waypoint);
  if (s.load_balancing) {
    Json prefs = Json::array();
    for (auto scope : s.load_balancing->routing_preference) prefs.push_back(ScopeName(scope));
    j["loadBalancer"] =
        Json{{"routingPreferences", std::move(prefs)},
             {"mode", ModeName(s.load_balancing->mode)},
             {"healthPolicy", s.load_balancing->allow_unhealthy ? "AllowAll" : "OnlyHealthy"}};
  }
  return j;
}

Json StringMatches(const std::vector<authz::StringMatch>& list) {
  Json out = Json::array();
  for (const authz::StringMatch& m : list) {
    switch (m.kind()) {
      case authz::StringMatch::Kind::kExact:
        out.push_back(Json{{"Exact", m.value()}});
        break;
      case authz::StringMatch::Kind::kPrefix:
        out.push_back(Json{{"Prefix", m.value()}});
        break;
      case authz::StringMatch::Kind::kSuffix:
        out.push_back(Json{{"Suffix", m.value()}});
        break;
      case authz::StringMatch::Kind::kPresence:
        out.push_back(Json{{"Presence", Json::array()}});
        break;
    }
  }
  return out;
}

Json Prefixes(const std::vector<authz::IpPrefix>& list) {
  Json out = Json::array();
  for (const authz::IpPrefix& p : list) out.push_back(p.ToString());
  return out;
}

Json ServiceAccounts(const std::vector<authz::ServiceAccountMatch>& list) {
  Json out = Json::array();
  for (const authz::ServiceAccountMatch& m : list) {
    out.push_back(Json{{"namespace", m.ns}, {"serviceAccount", m.service_account}});
  }
  return out;
}

Json RenderMatch(const authz::Match& m) {
  Json j = Json::object();
  // Empty lists are left out, as ztunnel's skip_serializing_if does.
  auto put = [&j](const char* key, Json value) {
    if (!value.empty()) j[key] = std::move(value);
  };
  put("namespaces", StringMatches(m.namespaces));
  put("notNamespaces", StringMatches(m.not_namespaces));
  put("serviceAccounts", ServiceAccounts(m.service_accounts));
  put("notServiceAccounts", ServiceAccounts(m.not_service_accounts));
  put("principals", StringMatches(m.principals));
  put("notPrincipals", StringMatches(m.not_principals));
  put("sourceIps", Prefixes(m.source_ips));
  put("notSourceIps", Prefixes(m.not_source_ips));
  put("destinationIps", Prefixes(m.destination_ips));
  put("notDestinationIps", Prefixes(m.not_destination_ips));
  put("destinationPorts", Json(m.destination_ports));
  put("notDestinationPorts", Json(m.not_destination_ports));
  return j;
}

Json RenderPolicy(const authz::Policy& p) {
  Json rules = Json::array();
  for (const authz::Rule& rule : p.rules) {
    Json clauses = Json::array();
    for (const authz::Clause& clause : rule.clauses) {
      Json matches = Json::array();
      for (const authz::Match& m : clause.matches) matches.push_back(RenderMatch(m));
      clauses.push_back(std::move(matches));
    }
    rules.push_back(std::move(clauses));
  }
  const char* scope = p.scope == authz::Scope::kGlobal      ? "Global"
                      : p.scope == authz::Scope::kNamespace ? "Namespace"
                                                            : "WorkloadSelector";
  return Json{{"name", p.name},
              {"namespace", p.ns},
              {"scope", scope},
              {"action", p.action == authz::Action::kAllow ? "Allow" : "Deny"},
              {"rules", std::move(rules)},
              {"dryRun", p.dry_run}};
}

std::string Rfc3339(const ASN1_TIME* t) {
  absl::StatusOr<int64_t> unix = identity::TimeToUnix(t);
  if (!unix.ok()) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(*unix), absl::UTCTimeZone());
}

std::string SerialDecimal(const X509* cert) {
  tls::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!bn) return "";
  char* dec = BN_bn2dec(bn.get());
  if (dec == nullptr) return "";
  std::string out(dec);
  OPENSSL_free(dec);
  return out;
}

std::string PemBlock(absl::string_view der) {
  std::string b64 = absl::Base64Escape(der);
  std::string out = "-----BEGIN CERTIFICATE-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) absl::StrAppend(&out, b64.substr(i, 64), "\n");
  absl::StrAppend(&out, "-----END CERTIFICATE-----\n");
  return out;
}

// RenderCerts parses every CERTIFICATE block of `pem` (other blocks are
// skipped) into ztunnel's CertDump objects. InvalidArgument when a block
// does not parse.
absl::StatusOr<Json> RenderCerts(const std::string& pem) {
  Json out = Json::array();
  if (pem.empty()) return out;
  ERR_clear_error();
  tls::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), pem.size()));
  if (!bio) return absl::ResourceExhaustedError("out of memory");
  for (;;) {
    tls::UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) {
      uint32_t err = ERR_peek_last_error();
      bool end = ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
      char text[256];
      ERR_error_string_n(err, text, sizeof(text));
      ERR_clear_error();
      if (end) break;
      return absl::InvalidArgumentError(text);
    }
    uint8_t* der = nullptr;
    int len = i2d_X509(cert.get(), &der);
    if (len <= 0) {
      ERR_clear_error();
      return absl::InvalidArgumentError("a certificate does not re-encode");
    }
    std::string block = PemBlock(absl::string_view(reinterpret_cast<char*>(der), len));
    OPENSSL_free(der);
    out.push_back(Json{{"pem", absl::Base64Escape(block)},
                       {"serialNumber", SerialDecimal(cert.get())},
                       {"validFrom", Rfc3339(X509_get0_notBefore(cert.get()))},
                       {"expirationTime", Rfc3339(X509_get0_notAfter(cert.get()))}});
  }
  return out;
}

Json RenderCertDump(const CertDump& c) {
  Json j{{"identity", c.identity}, {"state", c.state}};
  absl::StatusOr<Json> chain = RenderCerts(c.chain_pem);
  absl::StatusOr<Json> roots = RenderCerts(c.roots_pem);
  if (!chain.ok()) {
    j["state"] =
        absl::StrCat("Unavailable: certificate chain does not parse: ", chain.status().message());
  } else if (!roots.ok()) {
    j["state"] =
        absl::StrCat("Unavailable: root certificates do not parse: ", roots.status().message());
  }
  j["certChain"] = chain.ok() && roots.ok() ? std::move(*chain) : Json::array();
  j["rootCerts"] = chain.ok() && roots.ok() ? std::move(*roots) : Json::array();
  return j;
}

}  // namespace

std::string RenderConfigDump(const ConfigDumpSources& sources) {
  Json doc = Json::object();
  Json workloads = Json::array();
  Json services = Json::array();
  if (sources.workloads != nullptr) {
    // One snapshot, so a service's endpoints agree with the workload list.
    std::unique_ptr<runtime::WorkloadDirectory> snap = sources.workloads->Clone();
    for (const runtime::Workload& w : snap->All()) workloads.push_back(RenderWorkload(w));
    std::vector<runtime::Service> all = snap->AllServices();
    runtime::WorkloadDirectory::View view = snap->Read();
    for (const runtime::Service& s : all) services.push_back(RenderService(s, view));
  }
  Json policies = Json::array();
  if (sources.policies != nullptr) {
    for (const authz::Policy& p : sources.policies->All()) policies.push_back(RenderPolicy(p));
  }
  Json certificates = Json::array();
  if (sources.certificates) {
    std::vector<CertDump> certs = sources.certificates();
    std::stable_sort(certs.begin(), certs.end(),
                     [](const CertDump& a, const CertDump& b) { return a.identity < b.identity; });
    for (const CertDump& c : certs) certificates.push_back(RenderCertDump(c));
  }
  doc["workloads"] = std::move(workloads);
  doc["services"] = std::move(services);
  doc["policies"] = std::move(policies);
  doc["certificates"] = std::move(certificates);
  return doc.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string ChainPem(const identity::Credentials& creds) {
  std::string out;
  for (const std::string& der : creds.chain_der()) out += PemBlock(der);
  return out;
}

std::vector<CertDump> CertDumpsFromFiles(const std::vector<SvidFile>& files,
                                         const std::string& roots_pem) {
  std::vector<CertDump> out;
  std::set<std::string> seen;
  for (const SvidFile& f : files) {
    if (!seen.insert(f.identity).second) continue;
    CertDump d;
    d.identity = f.identity;
    d.roots_pem = roots_pem;
    absl::StatusOr<std::string> chain = ReadFileBounded(f.cert_path, kMaxFileSize, "certificate");
    if (chain.ok()) {
      d.state = "Available";
      d.chain_pem = std::move(*chain);
    } else {
      d.state = absl::StrCat("Unavailable: ", chain.status().message());
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace ambient::examples
