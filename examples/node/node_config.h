// The node config file shared by the example node agent and node proxy: the
// workloads of the mesh (what ztunnel would learn from xDS), and for the pods
// on this node their netns name and SVID files. JSON:
//
//   {
//     "trust_domain": "cluster.local",          // default for workloads
//     "trust_bundle": "ca.pem",                  // PEM roots of that domain
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
// Relative paths are taken from the config file's directory. Unknown keys,
// wrong types and bad values are errors naming the place.
#ifndef AMBIENT_EXAMPLES_NODE_NODE_CONFIG_H_
#define AMBIENT_EXAMPLES_NODE_NODE_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/runtime/node_proxy.h"

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

// ReadFile returns the contents of `path`, at most 16 MiB (a larger file, or
// an endless one such as /dev/zero, is InvalidArgument; see
// ambient/base/read_file.h).
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace ambient::examples

#endif  // AMBIENT_EXAMPLES_NODE_NODE_CONFIG_H_
