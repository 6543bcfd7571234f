// ambient/runtime/socket.h: TCP socket helpers for the runtime.
//
// Addresses are ambient::SocketAddress values (ambient/base/address.h;
// numeric only: the runtime never resolves names). Sockets are non-blocking
// and close-on-exec; every TCP socket gets TCP_NODELAY and keepalive
// (ztunnel's 180 s idle, 180 s interval, 9 probes).
#ifndef AMBIENT_RUNTIME_SOCKET_H_
#define AMBIENT_RUNTIME_SOCKET_H_

#include <sys/socket.h>

#include "absl/status/statusor.h"
#include "ambient/base/address.h"

namespace ambient::runtime {

// LocalAddress / PeerAddress of a socket.
absl::StatusOr<SocketAddress> LocalAddress(int fd);
absl::StatusOr<SocketAddress> PeerAddress(int fd);

// Listen makes a listening TCP socket (SO_REUSEADDR, backlog 1024) on
// `addr`; port 0 picks a free port (see LocalAddress). Returns the fd.
absl::StatusOr<int> Listen(const SocketAddress& addr);

// StartConnect makes a socket and starts a non-blocking connect to `addr`;
// the caller waits for writability and calls FinishConnect. Returns the fd.
absl::StatusOr<int> StartConnect(const SocketAddress& addr);
// StartConnectOn starts a non-blocking connect to `addr` on a socket the
// caller already made (e.g. inside a pod's netns, marked, bound); it sets it
// non-blocking and tunes it like StartConnect. The fd stays the caller's,
// also on error.
absl::Status StartConnectOn(int fd, const SocketAddress& addr);
// FinishConnect reports the result of a connect started by StartConnect.
absl::Status FinishConnect(int fd);

// Accept returns a new connection from `listen_fd`, or Unavailable when none
// is waiting (EAGAIN). The new socket is set up as described above.
absl::StatusOr<int> Accept(int listen_fd);

// TuneTcp sets TCP_NODELAY and keepalive on `fd` (best effort).
void TuneTcp(int fd);

// SetNonBlocking puts `fd` in non-blocking mode.
absl::Status SetNonBlocking(int fd);

// AbortClose closes `fd` with an RST (SO_LINGER 0), telling the peer the
// connection broke rather than ended.
void AbortClose(int fd);

}  // namespace ambient::runtime

#endif  // AMBIENT_RUNTIME_SOCKET_H_
