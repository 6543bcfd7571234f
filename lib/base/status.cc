#include "ambient/base/status.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ambient {
namespace {
constexpr absl::string_view kDetailUrl = "type.ambient.dev/detail";
}  // namespace

absl::Status WithDetail(absl::Status status, int detail) {
  if (status.ok()) return status;
  status.SetPayload(kDetailUrl, absl::Cord(absl::StrCat(detail)));
  return status;
}

int DetailOf(const absl::Status& status) {
  auto payload = status.GetPayload(kDetailUrl);
  int detail = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &detail)) return 0;
  return detail;
}

absl::Status Prefixed(absl::string_view prefix, const absl::Status& status) {
  if (status.ok()) return status;
  absl::Status out(status.code(), absl::StrCat(prefix, ": ", status.message()));
  status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace ambient
