// ambient/base/utf8.h: UTF-8 checks for text that crosses a wire whose
// schema says "string" (protobuf string fields, ZDS, xDS, the CA).
//
// Well-formed means RFC 3629: no overlong forms, no surrogates (U+D800 to
// U+DFFF), nothing above U+10FFFF, no truncated sequence.
#ifndef AMBIENT_BASE_UTF8_H_
#define AMBIENT_BASE_UTF8_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace ambient {

// Utf8Prefix returns how many leading bytes of `s` are well-formed UTF-8.
size_t Utf8Prefix(absl::string_view s);

// IsUtf8 reports whether all of `s` is well-formed UTF-8.
inline bool IsUtf8(absl::string_view s) { return Utf8Prefix(s) == s.size(); }

// ScrubUtf8 returns `s` with each byte that does not start a well-formed
// sequence replaced by U+FFFD, so text built from untrusted bytes (an error
// message quoting them) can go into a protobuf string field.
std::string ScrubUtf8(absl::string_view s);

}  // namespace ambient

#endif  // AMBIENT_BASE_UTF8_H_
