// Internal to lib/netns: the socket options the in-pod sockets need.
#ifndef AMBIENT_LIB_NETNS_SOCKOPT_H_
#define AMBIENT_LIB_NETNS_SOCKOPT_H_

#include <cstdint>

#include "absl/status/status.h"

namespace ambient::netns {

absl::Status SetIntOption(int fd, int level, int name, int value, const char* what);
// SetMark sets SO_MARK (needs CAP_NET_ADMIN); a 0 mark is left unset.
absl::Status SetMark(int fd, uint32_t mark);
// SetTransparent sets IP_TRANSPARENT or IPV6_TRANSPARENT, by `family`.
absl::Status SetTransparent(int fd, int family);
absl::Status SetNonBlocking(int fd);

}  // namespace ambient::netns

#endif  // AMBIENT_LIB_NETNS_SOCKOPT_H_
