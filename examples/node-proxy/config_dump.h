// Config dump: what the node proxy knows, as JSON in ztunnel's /config_dump
// shape, so that `istioctl ztunnel-config` (istio/istio
// istioctl/pkg/writer/ztunnel/configdump/api.go) and people used to ztunnel
// can read it.
//
// The document (camelCase keys, as ztunnel's serde output):
//   {"workloads": [...], "services": [...], "policies": [...],
//    "certificates": [...]}
// - workloads, in uid order: uid, workloadIps, waypoint {destination,
//   hboneMtlsPort}, protocol (HBONE|TCP), name, namespace, trustDomain,
//   serviceAccount, network, canonicalName, canonicalRevision, node,
//   authorizationPolicies, status (Healthy|Unhealthy), clusterId, locality
//   {region, zone, subzone}, services ["namespace/hostname"], capacity.
//   As in ztunnel, fields left at their default (no waypoint, an empty
//   network, node, canonical name or revision, no policies, locality or
//   services) are left out.
// - services, in "namespace/hostname" order: name, namespace, hostname, vips
//   ["network/ip"], ports {"service port": target port}, endpoints {uid:
//   {workloadUid, port {"service port": target port} (the workload's own
//   mapping; {} means the service's), status}}, subjectAltNames, and
//   waypoint and loadBalancer {routingPreferences, mode, healthPolicy} when
//   set.
// - policies, in "namespace/name" order: name, namespace, scope
//   (Global|Namespace|WorkloadSelector), action (Allow|Deny), rules (rule ->
//   clause -> match: namespaces, principals as {"Exact"|"Prefix"|"Suffix":
//   s} or {"Presence": []}, serviceAccounts {namespace, serviceAccount},
//   sourceIps and destinationIps as "ip/len", destinationPorts, each with
//   its not* twin, empty lists left out), dryRun.
// - certificates, in identity order: identity, state ("Available",
//   "Initializing", "Unavailable: why"), certChain (leaf first, then
//   intermediates) and rootCerts, each certificate as {pem (base64 of its
//   PEM text), serialNumber (decimal), validFrom, expirationTime (RFC 3339,
//   UTC, seconds)}.
// ztunnel's workloadState, staticConfig, version and config sections are not
// produced.
#ifndef AMBIENT_EXAMPLES_NODE_PROXY_CONFIG_DUMP_H_
#define AMBIENT_EXAMPLES_NODE_PROXY_CONFIG_DUMP_H_

#include <functional>
#include <string>
#include <vector>

#include "ambient/authz/policy_store.h"
#include "ambient/identity/credentials.h"
#include "ambient/runtime/workload_directory.h"

namespace ambient::examples {

// CertDump is one identity's certificate as the host holds it. A host fills
// it from whatever it has: SVID files (CertDumpsFromFiles), or a
// CredentialHolder fed by the Istio CA (ChainPem of its Credentials).
struct CertDump {
  std::string identity;   // "spiffe://td/ns/NS/sa/SA"
  std::string state;      // "Available", "Initializing" or "Unavailable: why"
  std::string chain_pem;  // PEM, leaf first, then intermediates ("" if none)
  std::string roots_pem;  // PEM, the trust roots the chain ends at ("" if none)
};

// ConfigDumpSources names what RenderConfigDump reads. Every source may be
// absent (null or empty): its section is then an empty list.
struct ConfigDumpSources {
  const runtime::WorkloadDirectory* workloads = nullptr;
  const authz::PolicyStore* policies = nullptr;
  std::function<std::vector<CertDump>()> certificates;
};

// RenderConfigDump returns the JSON document described above (indented by
// two spaces, ending in a newline). The directory is read through one
// consistent snapshot (WorkloadDirectory::Clone), the policies through
// PolicyStore::All; `certificates` is called once. Never fails: a CertDump
// whose chain or roots do not parse as PEM certificates is shown without
// certificates and with state "Unavailable: <which> does not parse: <why>";
// strings that are not UTF-8 are shown with U+FFFD in place of the bad
// bytes. Thread-safe as its sources are (the directory and store are).
std::string RenderConfigDump(const ConfigDumpSources& sources);

// ChainPem returns `creds`' certificate chain (leaf first, as it is sent in
// handshakes) as PEM text, for CertDump::chain_pem.
std::string ChainPem(const identity::Credentials& creds);

// SvidFile names the certificate file of one identity (the node config's
// "cert" of a pod).
struct SvidFile {
  std::string identity;
  std::string cert_path;
};

// CertDumpsFromFiles reads each file now and returns one CertDump per
// distinct identity (the first file given for it): "Available" with the
// file's PEM, or "Unavailable: <the read error>". `roots_pem` is every
// entry's roots. Blocks while the files are read.
std::vector<CertDump> CertDumpsFromFiles(const std::vector<SvidFile>& files,
                                         const std::string& roots_pem);

}  // namespace ambient::examples

#endif  // AMBIENT_EXAMPLES_NODE_PROXY_CONFIG_DUMP_H_
