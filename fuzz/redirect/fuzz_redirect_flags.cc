// libFuzzer target: the input is split at NUL bytes into arguments for
// ParseFlags; every config that parses must render for both backends.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ambient/redirect/config.h"
#include "ambient/redirect/render.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  std::vector<std::string> args;
  std::string cur;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      args.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(data[i]));
    }
  }
  if (!cur.empty()) args.push_back(cur);
  absl::StatusOr<ambient::redirect::Config> config = ambient::redirect::ParseFlags(args);
  if (!config.ok()) return 0;
  if (config->host && !config->kubelet_uid.has_value()) config->kubelet_uid = 0;
  for (auto backend : {ambient::redirect::Backend::kIptables, ambient::redirect::Backend::kNftables}) {
    config->backend = backend;
    absl::StatusOr<std::string> text = ambient::redirect::Render(*config);
    if (!text.ok()) __builtin_trap();  // a config that validates must render
  }
  return 0;
}
