// extern "C" shims of the workload description (ambient/c/workload.h).
#include "ambient/c/workload.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "capi/internal.h"

using ambient::capi::Guard;
using ambient::capi::NullArgument;

extern "C" {

ambient_workload_info* ambient_workload_info_new(void) {
  return ambient::capi::NewOrNull<ambient_workload_info>();
}

void ambient_workload_info_free(ambient_workload_info* info) { delete info; }

ambient_error* ambient_workload_info_set(ambient_workload_info* info, ambient_workload_field field,
                                         const char* value) {
  // A C caller may pass any int: copy the bits out instead of reading an
  // out-of-range value as the enum type.
  int index;
  std::memcpy(&index, &field, sizeof(index));
  return Guard([&]() -> absl::Status {
    if (info == nullptr) return NullArgument("info");
    if (index < 0 || index > AMBIENT_WORKLOAD_ZONE) {
      return absl::InvalidArgumentError(absl::StrCat("unknown workload field ", index));
    }
    info->fields[static_cast<size_t>(index)] = value == nullptr ? "" : value;
    return absl::OkStatus();
  });
}

ambient_error* ambient_workload_info_add_address(ambient_workload_info* info, const char* ip) {
  return Guard([&]() -> absl::Status {
    if (info == nullptr) return NullArgument("info");
    if (ip == nullptr) return NullArgument("ip");
    info->addresses.emplace_back(ip);
    return absl::OkStatus();
  });
}

void ambient_workload_info_set_hbone(ambient_workload_info* info, int on) {
  if (info != nullptr) info->hbone = on != 0;
}

}  // extern "C"
