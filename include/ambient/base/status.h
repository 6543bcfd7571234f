// ambient/base/status.h: how ambient's C++ layers report failures.
//
// Every fallible C++ call returns absl::Status or absl::StatusOr<T> with a
// canonical code and a message that says what is wrong and where. Some
// failures also carry a layer-specific detail code (for example which X509-SVID
// rule a certificate broke), attached as a Status payload so it survives
// being passed up and is visible at the C boundary as ambient_error_detail().
#ifndef AMBIENT_BASE_STATUS_H_
#define AMBIENT_BASE_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ambient {

// WithDetail returns `status` with the layer-specific `detail` code attached.
// An OK status is returned unchanged.
absl::Status WithDetail(absl::Status status, int detail);

// DetailOf returns the detail code attached to `status`, or 0.
int DetailOf(const absl::Status& status);

// Prefixed returns `status` with "`prefix`: " put before its message, keeping
// its code and payloads. An OK status is returned unchanged.
absl::Status Prefixed(absl::string_view prefix, const absl::Status& status);

}  // namespace ambient

#endif  // AMBIENT_BASE_STATUS_H_
