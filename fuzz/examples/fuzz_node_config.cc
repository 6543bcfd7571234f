// fuzz_node_config: the example node config parser (ParseNodeConfig in
// examples/node/node_config.h) on arbitrary bytes. Every input is either
// refused with InvalidArgument and a message, or accepted with a config
// whose paths are resolved against the base directory; never a crash, an
// exception or a leak. The parser reads no files. Built by `make fuzz`
// (fuzz/examples/CMakeLists.txt).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "node_config.h"

namespace {

// A resolved path is empty, absolute, or under the base directory.
bool Resolved(const std::string& path, const std::string& base) {
  return path.empty() || path[0] == '/' || absl::StartsWith(path, base + "/");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string kBase = "/nonexistent/fuzz-node-config";
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ambient::examples::NodeConfig> c =
      ambient::examples::ParseNodeConfig(in, kBase, "node.json");
  if (!c.ok()) {
    if (c.status().code() != absl::StatusCode::kInvalidArgument) abort();
    if (c.status().message().empty()) abort();
    return 0;
  }
  // The JSON lexer stops at a NUL byte; such text must not be accepted.
  if (in.find('\0') != absl::string_view::npos) abort();
  if (c->trust_bundle.empty() || !Resolved(c->trust_bundle, kBase)) abort();
  for (const ambient::examples::PodConfig& pod : c->pods) {
    if (pod.cert.empty() != pod.key.empty()) abort();
    if (!Resolved(pod.cert, kBase) || !Resolved(pod.key, kBase)) abort();
  }
  return 0;
}
