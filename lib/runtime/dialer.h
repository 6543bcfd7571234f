// Dial: a non-blocking TCP connect with a timeout on an EventLoop.
#ifndef AMBIENT_LIB_RUNTIME_DIALER_H_
#define AMBIENT_LIB_RUNTIME_DIALER_H_

#include <functional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/socket.h"

namespace ambient::runtime {

// Dialing is one dial in flight (owned by itself until it finishes).
class Dialing;

// Dial connects to `addr`; `done` gets the connected fd (caller owns it) or
// the error (DeadlineExceeded after `timeout`). `done` runs on the loop,
// never inside Dial itself.
// Returns the dial, usable with CancelDial until `done` has been called.
Dialing* Dial(EventLoop* loop, const SocketAddress& addr, absl::Duration timeout,
              std::function<void(absl::StatusOr<int>)> done);

// SocketMaker makes the (unconnected) socket for a dial to `addr`, e.g. in a
// pod's netns with a mark; it returns an fd the dialer then owns.
using SocketMaker = std::function<absl::StatusOr<int>(const SocketAddress& addr)>;

// DialWith is Dial on a socket from `make` (Dial's own socket when empty).
Dialing* DialWith(EventLoop* loop, const SocketAddress& addr, absl::Duration timeout,
                  SocketMaker make, std::function<void(absl::StatusOr<int>)> done);

// CancelDial ends a dial whose `done` has not been called yet: its socket
// is closed now, `done` is destroyed without being called, and the dial is
// freed at the end of the loop iteration. Loop thread.
void CancelDial(Dialing* dial);

}  // namespace ambient::runtime

#endif  // AMBIENT_LIB_RUNTIME_DIALER_H_
