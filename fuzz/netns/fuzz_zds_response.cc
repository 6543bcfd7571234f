// Fuzzes what a node agent receives from a proxy: the hello and the acks.
#include <cstddef>
#include <cstdint>

#include "ambient/netns/zds.h"

namespace zds = ambient::netns::zds;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)zds::DecodeHello(bytes);
  absl::StatusOr<std::string> ack = zds::DecodeAck(bytes);
  if (ack.ok()) {
    // An ack's text survives a round trip when it fits.
    std::string encoded = zds::EncodeAck(*ack);
    if (encoded.size() > zds::kMaxMessageSize) __builtin_trap();
    absl::StatusOr<std::string> back = zds::DecodeAck(encoded);
    if (!back.ok()) __builtin_trap();
  }
  return 0;
}
