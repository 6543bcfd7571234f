// fuzz_local_config: the ztunnel local config parser (ParseLocalConfig in
// examples/node/local_config.h) on arbitrary bytes. Every input is either
// refused with InvalidArgument and a message, or accepted with workloads
// and services a WorkloadDirectory takes as they are; never a crash, an
// uncaught exception or a leak. Built by `make fuzz`
// (fuzz/examples/CMakeLists.txt).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "ambient/runtime/workload_directory.h"
#include "local_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ambient::examples::LocalConfig> c =
      ambient::examples::ParseLocalConfig(in, "local.yaml");
  if (!c.ok()) {
    if (c.status().code() != absl::StatusCode::kInvalidArgument) abort();
    if (c.status().message().empty()) abort();
    return 0;
  }
  if (in.find('\0') != absl::string_view::npos) abort();
  // What was accepted loads into a directory (the parser checked it so).
  ambient::runtime::WorkloadDirectory dir;
  for (const auto& s : c->services) {
    if (!dir.UpsertService(s).ok()) abort();
  }
  for (const auto& w : c->workloads) {
    if (!dir.Upsert(w).ok()) abort();
  }
  return 0;
}
