// Fuzzes the ZDS request decoder (the bytes a node proxy receives from the
// agent): no crash on any input, and whatever decodes re-encodes to bytes
// that decode to the same request.
#include <cstddef>
#include <cstdint>

#include "ambient/netns/zds.h"

namespace zds = ambient::netns::zds;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<zds::Request> req = zds::DecodeRequest(bytes);
  if (!req.ok()) return 0;
  absl::StatusOr<std::string> again = zds::EncodeRequest(*req);
  if (!again.ok()) __builtin_trap();  // anything we accept, we can send
  absl::StatusOr<zds::Request> back = zds::DecodeRequest(*again);
  if (!back.ok() || back->type != req->type || back->uid != req->uid ||
      back->has_workload_info != req->has_workload_info ||
      back->workload_info.name != req->workload_info.name ||
      back->workload_info.ns != req->workload_info.ns ||
      back->workload_info.service_account != req->workload_info.service_account) {
    __builtin_trap();
  }
  return 0;
}
