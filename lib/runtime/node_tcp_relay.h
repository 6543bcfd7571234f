// TcpRelay: copies bytes both ways between two TCP sockets on an EventLoop
// (the node proxy's plain-TCP paths: passthrough and plaintext inbound).
// Each direction keeps one 64 KiB buffer: it reads only while the buffer is
// empty and writes until it is, so a slow reader slows the writer down. EOF
// on one side becomes shutdown(SHUT_WR) on the other once the buffer is
// drained; the relay ends when both directions did, or at the first error
// (then both sockets are closed with an RST). It owns both fds and deletes
// itself (deferred) after calling `done`.
#ifndef AMBIENT_LIB_RUNTIME_NODE_TCP_RELAY_H_
#define AMBIENT_LIB_RUNTIME_NODE_TCP_RELAY_H_

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ambient/runtime/event_loop.h"

namespace ambient::runtime {

struct TcpRelayResult {
  absl::Status status;
  uint64_t a_to_b = 0;
  uint64_t b_to_a = 0;
  absl::Time ended;
};

// StartTcpRelay relays between `a` and `b` (both connected, non-blocking).
void StartTcpRelay(EventLoop* loop, int a, int b, std::function<void(const TcpRelayResult&)> done);

}  // namespace ambient::runtime

#endif  // AMBIENT_LIB_RUNTIME_NODE_TCP_RELAY_H_
