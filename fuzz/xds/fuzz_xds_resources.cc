// Fuzzes the Address and Authorization handlers with arbitrary bytes as one
// resource of each type: no crash or leak; a resource is either rejected and
// leaves the directory / store empty, or applied under its own name and gone
// again after its removal.
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "ambient/authz/policy_codec.h"
#include "ambient/xds/address_handler.h"
#include "ambient/xds/authorization_handler.h"

namespace {

using ambient::xds::ResourceUpdate;

void Address(const std::string& bytes) {
  auto decoded = ambient::xds::DecodeAddress(bytes);
  std::string name = "junk";
  if (decoded.ok()) {
    if (auto* w = std::get_if<ambient::runtime::Workload>(&*decoded)) {
      name = w->uid;
    } else {
      name = std::get<ambient::runtime::Service>(*decoded).Key();
    }
  }
  ambient::runtime::WorkloadDirectory dir;
  ambient::xds::AddressHandler h(&dir);
  auto rejected = h.Apply({ResourceUpdate{name, "v", ambient::xds::kAddressType, bytes}}, {});
  size_t held = dir.size() + dir.service_count();
  if (!decoded.ok() && rejected.size() != 1) __builtin_trap();
  if (!rejected.empty() && held != 0) __builtin_trap();
  if (rejected.empty() && held != 1) __builtin_trap();
  h.Apply({}, {name});
  if (dir.size() + dir.service_count() != 0) __builtin_trap();
}

void Authorization(const std::string& bytes) {
  auto decoded = ambient::authz::DecodePolicyProto(bytes);
  std::string name = decoded.ok() ? decoded->key() : "junk";
  ambient::authz::PolicyStore store;
  ambient::xds::AuthorizationHandler h(&store);
  auto rejected = h.Apply({ResourceUpdate{name, "v", ambient::xds::kAuthorizationType, bytes}}, {});
  if (rejected.size() != (decoded.ok() ? 0u : 1u)) __builtin_trap();
  if (store.size() != (decoded.ok() ? 1u : 0u)) __builtin_trap();
  h.Apply({}, {name});
  if (store.size() != 0) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  Address(bytes);
  Authorization(bytes);
  return 0;
}
