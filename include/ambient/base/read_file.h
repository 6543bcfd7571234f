// ambient/base/read_file.h: reading a whole file with a size limit.
//
// Every file the library or the examples read (certificates, keys, trust
// bundles, configuration) comes from a path a user or an installer typed, so
// it may be huge, endless (/dev/zero) or not a file at all. ReadFileBounded
// never holds more than `limit` + 1 bytes of it.
#ifndef AMBIENT_BASE_READ_FILE_H_
#define AMBIENT_BASE_READ_FILE_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ambient {

// The limit most callers use: 16 MiB, far above any certificate chain,
// bundle or node configuration.
inline constexpr size_t kMaxFileSize = size_t{16} << 20;

// ReadFileBounded returns the contents of `path`; errors call it "<what> file
// <path>" (`what` is e.g. "certificate"), or just <path> when `what` is empty. A regular file
// larger than `limit` is refused from its size before any byte is read; any other file (a pipe, a
// device) is read until `limit` + 1 bytes at most. Errors: InvalidArgument
// ("<what> file <path> is larger than <limit> bytes", or "... is a
// directory"); a failed open/read gives "cannot read <what> file <path>:
// <strerror>" with ErrnoStatusCode's code (ambient/base/errno_status.h:
// NotFound for a missing file, PermissionDenied for EACCES, ...).
// Thread-safe; it blocks while the file is read.
absl::StatusOr<std::string> ReadFileBounded(const std::string& path, size_t limit,
                                            absl::string_view what);

}  // namespace ambient

#endif  // AMBIENT_BASE_READ_FILE_H_
