// Feeds arbitrary bytes to both policy decoders; whatever decodes is then
// evaluated once, so matching code sees fuzzer-shaped policies too.
#include <cstddef>
#include <cstdint>

#include "ambient/authz/policy_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ambient::authz;
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  Connection conn;
  conn.src_ip = *ambient::IpAddress::Parse("198.18.0.1");
  conn.dst_ip = *ambient::IpAddress::Parse("198.18.0.2");
  conn.dst_port = 9080;
  conn.src_identity = ambient::identity::IstioIdentity("cluster.local", "ns", "sa");
  if (auto p = DecodePolicyProto(in); p.ok()) (void)p->Matches(conn);
  if (auto list = DecodePolicyListJson(in); list.ok()) {
    for (const Policy& p : *list) (void)p.Matches(conn);
  }
  return 0;
}
