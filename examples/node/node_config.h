// The node config file shared by the example node agent and node proxy: the
// workloads of the mesh (what ztunnel would learn from xDS), and for the pods
// on this node their netns name and SVID files. JSON:
//
//   {
//     "trust_domain": "cluster.local",          // default for workloads
//     "trust_bundle": "ca.pem",                  // PEM roots of that domain
//     "local_config": "mesh.yaml",               // optional: ztunnel's local
//                                                // config (local_config.h)
//     "workloads": [
//       {"uid": "pod-a", "name": "client", "namespace": "demo",
//        "service_account": "client", "addresses": ["198.18.1.2"],
//        "protocol": "HBONE",                    // or "NONE"
//        "policies": ["demo/allow-x"],           // selected policy keys
//        "netns": "NAME-or-/path",               // pods on this node
//        "cert": "client.pem", "key": "client.key"}
//     ]
//   }
//
// With "local_config", a workloads entry may be just {"uid", "netns",
// "cert", "key"}: the rest of the workload comes from the local config,
// which also brings services, waypoints and policies (the node-local parts,
// netns and SVID files, stay here since ztunnel's format has none).
// Relative paths are taken from the config file's directory. Unknown keys,
// wrong types and bad values are errors naming the place.
#ifndef AMBIENT_EXAMPLES_NODE_NODE_CONFIG_H_
#define AMBIENT_EXAMPLES_NODE_NODE_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/runtime/node_proxy.h"
#include "local_config.h"

namespace ambient::examples {

struct PodConfig {
  runtime::Workload workload;
  std::string netns;  // empty: not a pod of this node
  std::string cert;   // PEM chain, leaf first
  std::string key;
};

struct NodeConfig {
  std::string trust_domain = "cluster.local";
  std::string trust_bundle;
  std::vector<PodConfig> pods;
  // From the local config file, when the node file names one.
  std::string local_config;  // its path, resolved
  std::vector<runtime::Service> services;
  std::vector<authz::Policy> policies;
};

// LoadNodeConfig reads and checks the file at `path` (ParseNodeConfig of its
// contents, with relative paths taken from its directory). NotFound when the
// file cannot be read.
absl::StatusOr<NodeConfig> LoadNodeConfig(const std::string& path);

// ParseNodeConfig checks the config text `json`, resolving relative file
// paths against `base_dir`; `name` (the file's path, say) starts the errors
// about the document as a whole. It reads no files: the trust bundle, cert
// and key are only paths here. InvalidArgument naming the place for
// anything malformed.
absl::StatusOr<NodeConfig> ParseNodeConfig(absl::string_view json, const std::string& base_dir,
                                           const std::string& name = "config");

// MergeLocalConfig adds ztunnel's local config to a parsed node config:
// its workloads fill the node file's uid-only entries (which keep their
// netns and SVID files) or are added as workloads of other nodes; its
// services and policies are taken as they are. InvalidArgument when a
// workload is fully described in both files or a uid-only entry is not in
// the local config.
absl::Status MergeLocalConfig(LocalConfig local, NodeConfig* config);

// ReadFile returns the contents of `path`, at most 16 MiB (a larger file, or
// an endless one such as /dev/zero, is InvalidArgument; see
// ambient/base/read_file.h).
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace ambient::examples

#endif  // AMBIENT_EXAMPLES_NODE_NODE_CONFIG_H_
