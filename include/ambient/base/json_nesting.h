// ambient/base/json_nesting.h: a guard run on untrusted JSON before a parser.
//
// protobuf's JSON converter takes time quadratic in the nesting depth of its
// input, so a few hundred kilobytes of '[' keep it busy for minutes. Documents
// ambient reads (trust bundles, authorization policies) nest a dozen levels at
// most; CheckJsonNesting refuses deeper ones in one linear pass.
#ifndef AMBIENT_BASE_JSON_NESTING_H_
#define AMBIENT_BASE_JSON_NESTING_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ambient {

// CheckJsonNesting returns InvalidArgument ("<what> is not valid: nested
// deeper than N levels (at offset K)") when `json` opens more than
// `max_depth` arrays/objects at once, counting only brackets outside strings.
// It does not validate the JSON otherwise.
absl::Status CheckJsonNesting(absl::string_view json, int max_depth, absl::string_view what);

}  // namespace ambient

#endif  // AMBIENT_BASE_JSON_NESTING_H_
