#include "node_config.h"

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "ambient/base/read_file.h"

namespace ambient::examples {

namespace {

using nlohmann::json;

absl::Status Bad(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

absl::Status OnlyKeys(const json& obj, const std::string& where,
                      const std::set<std::string>& keys) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (keys.count(it.key()) == 0)
      return Bad(where, absl::StrCat("unknown key \"", it.key(), "\""));
  }
  return absl::OkStatus();
}

absl::Status GetString(const json& obj, const std::string& key, const std::string& where,
                       std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end()) return absl::OkStatus();
  if (!it->is_string()) return Bad(absl::StrCat(where, ".", key), "want a string");
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status GetStrings(const json& obj, const std::string& key, const std::string& where,
                        std::vector<std::string>* out) {
  auto it = obj.find(key);
  if (it == obj.end()) return absl::OkStatus();
  if (!it->is_array()) return Bad(absl::StrCat(where, ".", key), "want a list of strings");
  for (size_t i = 0; i < it->size(); ++i) {
    if (!(*it)[i].is_string())
      return Bad(absl::StrCat(where, ".", key, "[", i, "]"), "want a string");
    out->push_back((*it)[i].get<std::string>());
  }
  return absl::OkStatus();
}

std::string Resolve(const std::string& dir, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  return absl::StrCat(dir, "/", path);
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  return ReadFileBounded(path, kMaxFileSize, "");
}

absl::StatusOr<NodeConfig> LoadNodeConfig(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  std::string dir = ".";
  if (size_t slash = path.rfind('/'); slash != std::string::npos) dir = path.substr(0, slash);
  if (dir.empty()) dir = "/";
  absl::StatusOr<NodeConfig> config = ParseNodeConfig(*text, dir, path);
  if (!config.ok() || config->local_config.empty()) return config;
  absl::StatusOr<LocalConfig> local = LoadLocalConfig(config->local_config);
  if (!local.ok()) return local.status();
  if (absl::Status st = MergeLocalConfig(std::move(*local), &*config); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", st.message()));
  }
  return config;
}

absl::Status MergeLocalConfig(LocalConfig local, NodeConfig* config) {
  std::map<std::string, PodConfig*> by_uid;
  for (PodConfig& pod : config->pods) by_uid[pod.workload.uid] = &pod;
  std::vector<PodConfig> others;  // workloads of other nodes
  for (runtime::Workload& w : local.workloads) {
    auto it = by_uid.find(w.uid);
    if (it == by_uid.end()) {
      PodConfig pod;
      pod.workload = std::move(w);
      others.push_back(std::move(pod));
      continue;
    }
    if (!it->second->workload.name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "workload ", w.uid, " is in both files: give only uid, netns, cert and key here"));
    }
    it->second->workload = std::move(w);
  }
  for (PodConfig& pod : others) config->pods.push_back(std::move(pod));
  for (const PodConfig& pod : config->pods) {
    if (pod.workload.name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("workload ", pod.workload.uid, " is not in ", config->local_config));
    }
  }
  config->services = std::move(local.services);
  config->policies = std::move(local.policies);
  return absl::OkStatus();
}

absl::StatusOr<NodeConfig> ParseNodeConfig(absl::string_view text, const std::string& dir,
                                           const std::string& path) {
  // nlohmann's lexer takes a NUL byte for the end of the input, which would
  // quietly accept whatever follows it.
  if (text.find('\0') != absl::string_view::npos) return Bad(path, "NUL byte in the text");
  json root = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return Bad(path, "not valid JSON");
  if (!root.is_object()) return Bad(path, "want a JSON object");
  if (absl::Status st =
          OnlyKeys(root, path, {"trust_domain", "trust_bundle", "workloads", "local_config"});
      !st.ok()) {
    return st;
  }
  NodeConfig config;
  if (absl::Status st = GetString(root, "trust_domain", path, &config.trust_domain); !st.ok())
    return st;
  if (absl::Status st = GetString(root, "trust_bundle", path, &config.trust_bundle); !st.ok())
    return st;
  if (config.trust_bundle.empty()) return Bad(path, "trust_bundle is required");
  config.trust_bundle = Resolve(dir, config.trust_bundle);
  if (absl::Status st = GetString(root, "local_config", path, &config.local_config); !st.ok())
    return st;
  if (!config.local_config.empty()) config.local_config = Resolve(dir, config.local_config);
  auto workloads = root.find("workloads");
  if (workloads == root.end() || !workloads->is_array()) {
    return Bad(path, "workloads must be a list");
  }
  for (size_t i = 0; i < workloads->size(); ++i) {
    const json& w = (*workloads)[i];
    std::string where = absl::StrCat("workloads[", i, "]");
    if (!w.is_object()) return Bad(where, "want an object");
    if (absl::Status st = OnlyKeys(w, where,
                                   {"uid", "name", "namespace", "service_account", "trust_domain",
                                    "addresses", "protocol", "policies", "netns", "cert", "key"});
        !st.ok()) {
      return st;
    }
    PodConfig pod;
    runtime::Workload& wl = pod.workload;
    wl.trust_domain = config.trust_domain;
    std::string protocol = "HBONE";
    for (auto [key, out] :
         std::vector<std::pair<const char*, std::string*>>{{"uid", &wl.uid},
                                                           {"name", &wl.name},
                                                           {"namespace", &wl.ns},
                                                           {"service_account", &wl.service_account},
                                                           {"trust_domain", &wl.trust_domain},
                                                           {"protocol", &protocol},
                                                           {"netns", &pod.netns},
                                                           {"cert", &pod.cert},
                                                           {"key", &pod.key}}) {
      if (absl::Status st = GetString(w, key, where, out); !st.ok()) return st;
    }
    if (absl::Status st = GetStrings(w, "addresses", where, &wl.addresses); !st.ok()) return st;
    if (absl::Status st = GetStrings(w, "policies", where, &wl.policies); !st.ok()) return st;
    if (protocol != "HBONE" && protocol != "NONE") {
      return Bad(absl::StrCat(where, ".protocol"), "want \"HBONE\" or \"NONE\"");
    }
    wl.hbone = protocol == "HBONE";
    if (pod.cert.empty() != pod.key.empty()) return Bad(where, "cert and key go together");
    pod.cert = Resolve(dir, pod.cert);
    pod.key = Resolve(dir, pod.key);
    // With a local config, an entry may name only a uid (and its netns and
    // SVID): the workload itself is the local config's.
    if (!config.local_config.empty() && wl.name.empty() && wl.ns.empty() && wl.addresses.empty() &&
        !wl.uid.empty()) {
      config.pods.push_back(std::move(pod));
      continue;
    }
    // Checks the names and addresses the same way the node proxy will.
    runtime::WorkloadDirectory check;
    if (absl::Status st = check.Upsert(wl); !st.ok()) return Bad(where, std::string(st.message()));
    config.pods.push_back(std::move(pod));
  }
  return config;
}

}  // namespace ambient::examples
