#include "netns/sockopt.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "ambient/base/errno_status.h"

namespace ambient::netns {

absl::Status SetIntOption(int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    return ErrnoStatus(errno, absl::StrCat("setsockopt ", what));
  }
  return absl::OkStatus();
}

absl::Status SetMark(int fd, uint32_t mark) {
  if (mark == 0) return absl::OkStatus();
  return SetIntOption(fd, SOL_SOCKET, SO_MARK, static_cast<int>(mark), "SO_MARK");
}

absl::Status SetTransparent(int fd, int family) {
  if (family == AF_INET6) return SetIntOption(fd, SOL_IPV6, IPV6_TRANSPARENT, 1, "IPV6_TRANSPARENT");
  return SetIntOption(fd, SOL_IP, IP_TRANSPARENT, 1, "IP_TRANSPARENT");
}

absl::Status SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoStatus(errno, "fcntl O_NONBLOCK");
  }
  return absl::OkStatus();
}

}  // namespace ambient::netns
