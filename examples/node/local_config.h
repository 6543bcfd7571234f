// ztunnel's local config (the file ztunnel reads from LOCAL_XDS_PATH): the
// workloads, services and authorization policies of the mesh in YAML (or
// JSON), camelCase keys, unknown keys rejected. ztunnel's
// examples/localhost.yaml loads unchanged. The mapping to the runtime's
// model (ambient/runtime/workload_directory.h):
//
//   workloads[]:                          runtime::Workload
//     uid, name, namespace                  uid, name, ns (uid defaults to
//                                           "cluster//v1/Pod/NS/NAME" when
//                                           empty, as the name is required)
//     workloadIps: [ip]                     addresses
//     protocol: TCP | HBONE (TCP)           hbone
//     trustDomain, serviceAccount           trust_domain, service_account
//                                           (default cluster.local / default)
//     network, node, clusterId              network, node, cluster
//     canonicalName, canonicalRevision      canonical_service / _revision
//     locality: {region, zone, subzone}     locality
//     status: Healthy | Unhealthy           healthy
//     capacity                              capacity
//     authorizationPolicies: [ns/name]      policies
//     services: {"ns/host": {port: target}} services
//     waypoint: {destination, hboneMtlsPort}  waypoint; destination is
//                                           "network/IP" or "ns/hostname"
//     workloadName, workloadType, hostname, nativeTunnel, networkMode:
//                                           accepted and ignored
//     networkGateway, applicationTunnel:    refused (not supported)
//   services[]:                           runtime::Service
//     name, namespace, hostname             name, ns, hostname
//     vips: ["network/IP"]                  vips
//     ports: {port: target}                 ports
//     subjectAltNames, waypoint             subject_alt_names, waypoint
//     loadBalancer: {routingPreferences: [Region|Zone|Subzone|Node|Cluster|
//       Network], mode: Standard|Strict|Failover|Passthrough,
//       healthPolicy: OnlyHealthy|AllowAll} load_balancing
//     canonical, ipFamilies, visibility, endpoints: accepted and ignored
//     weightedWaypoints, cidrVips:          refused (not supported)
//   policies[]:                           authz::Policy, in either shape:
//     ztunnel's: {name, namespace, scope: Global|Namespace|WorkloadSelector,
//       action: Allow|Deny, dryRun, rules: [[[match]]]} where a match has
//       namespaces, principals (string matches {Exact|Prefix|Suffix: s} or
//       {Presence: ...}), serviceAccounts ({namespace, serviceAccount}),
//       sourceIps / destinationIps ("CIDR"), destinationPorts, and their
//       not* forms;
//     Istio's istio.security.Authorization in the protobuf JSON mapping
//       (rules: [{clauses: [{matches: [...]}]}], SCREAMING enums), decoded
//       by authz::DecodePolicyJson.
//
// Errors name the place ("services[1].ports: ...").
#ifndef AMBIENT_EXAMPLES_NODE_LOCAL_CONFIG_H_
#define AMBIENT_EXAMPLES_NODE_LOCAL_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/authz/policy.h"
#include "ambient/runtime/workload_directory.h"

namespace ambient::examples {

struct LocalConfig {
  std::vector<runtime::Workload> workloads;
  std::vector<runtime::Service> services;
  std::vector<authz::Policy> policies;
};

// ParseLocalConfig checks the YAML/JSON text `text`; `name` starts the
// error messages. The result is also checked against a scratch
// WorkloadDirectory (duplicate addresses, bad identities). InvalidArgument
// naming the place for anything malformed.
absl::StatusOr<LocalConfig> ParseLocalConfig(absl::string_view text,
                                             const std::string& name = "local config");

// LoadLocalConfig reads and parses the file at `path`. NotFound when it
// cannot be read.
absl::StatusOr<LocalConfig> LoadLocalConfig(const std::string& path);

}  // namespace ambient::examples

#endif  // AMBIENT_EXAMPLES_NODE_LOCAL_CONFIG_H_
