#include "ambient/base/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "ambient/base/errno_status.h"

namespace ambient {

namespace {

// Name is how errors call the file: "<what> file <path>", or the bare path.
std::string Name(absl::string_view what, const std::string& path) {
  return what.empty() ? path : absl::StrCat(what, " file ", path);
}

absl::Status OpenError(absl::string_view what, const std::string& path, int err) {
  return ErrnoStatus(err, absl::StrCat("cannot read ", Name(what, path)));
}

absl::Status TooLarge(absl::string_view what, const std::string& path, size_t limit) {
  return absl::InvalidArgumentError(
      absl::StrCat(Name(what, path), " is larger than ", limit, " bytes"));
}

}  // namespace

absl::StatusOr<std::string> ReadFileBounded(const std::string& path, size_t limit,
                                            absl::string_view what) {
  int fd;
  do {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return OpenError(what, path, errno);
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};

  struct stat st {};
  if (fstat(fd, &st) != 0) return OpenError(what, path, errno);
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(Name(what, path), " is a directory"));
  }
  size_t expect = 0;
  if (S_ISREG(st.st_mode)) {
    if (static_cast<uint64_t>(st.st_size) > limit) return TooLarge(what, path, limit);
    expect = static_cast<size_t>(st.st_size);
  }

  std::string data;
  // A regular file's size is known; anything else grows in steps, never
  // beyond limit + 1 (the byte that proves it too large).
  data.resize(expect > 0 ? expect + 1 : std::min<size_t>(limit + 1, 64 << 10));
  size_t have = 0;
  for (;;) {
    if (have == data.size()) {
      if (data.size() > limit) break;
      data.resize(std::min(limit + 1, data.size() * 2));
    }
    ssize_t n = read(fd, data.data() + have, data.size() - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      return OpenError(what, path, errno);
    }
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  if (have > limit) return TooLarge(what, path, limit);
  data.resize(have);
  return data;
}

}  // namespace ambient
