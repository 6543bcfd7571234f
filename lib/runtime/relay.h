// Relay: copies bytes between a TCP socket (or a pair of fds, for stdin and
// stdout) and one HBONE stream, with backpressure both ways:
//  - fd -> stream: reads only while the stream's send buffer has room; a
//    full buffer pauses reading until the stream reports writable (which
//    follows HTTP/2 flow control of the peer).
//  - stream -> fd: writes what the stream received; a full socket pauses
//    consumption, so the stream's receive window is not released and the
//    peer is slowed down by flow control.
// Reads go through the loop's shared scratch buffer; per-stream memory is
// the stream's queues, which start empty and grow with the amount in flight.
// EOF on the fd becomes END_STREAM; END_STREAM becomes shutdown(SHUT_WR).
// The relay deletes itself (deferred) after calling `done`.
#ifndef AMBIENT_LIB_RUNTIME_RELAY_H_
#define AMBIENT_LIB_RUNTIME_RELAY_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/session.h"

namespace ambient::runtime {

struct RelayResult {
  absl::Status status;          // OK: both directions ended cleanly
  uint64_t fd_to_stream = 0;    // bytes read from the fd and sent on the stream
  uint64_t stream_to_fd = 0;    // bytes received on the stream and written to the fd
  int http_status = 0;          // client side: the CONNECT response
  std::string response_baggage; // client side: the response's `baggage` ("" if none)
  absl::Time started;
  absl::Time ended;
};

class Relay final : public StreamListener {
 public:
  using Done = std::function<void(const RelayResult&)>;
  // `in_fd` is read, `out_fd` written (the same fd for a TCP connection).
  // `owns_fds`: close them when done. The relay attaches itself to `id`.
  Relay(Session* session, hbone::StreamId id, int in_fd, int out_fd, bool owns_fds, Done done);
  ~Relay() override;

  // Start begins watching the fds.
  void Start();
  // set_on_response: `f` runs with the CONNECT response's status when it
  // arrives (client side), before any response byte is written to the fd.
  void set_on_response(std::function<void(int http_status)> f) { on_response_ = std::move(f); }

  void OnResponse(int http_status, const std::vector<hbone::Header>& headers) override;
  void OnReadable() override;
  void OnWritable() override;
  void OnClosed(const absl::Status& status) override;

 private:
  void PumpIn();
  void UpdateWatches();  // schedules ApplyWatches for the end of this iteration
  void ApplyWatches();
  void OnInIo(uint32_t events);
  void OnOutIo(uint32_t events);
  void Finish(absl::Status status);

  Session* session_;
  EventLoop* loop_;
  hbone::StreamId id_;
  int in_fd_;
  int out_fd_;
  bool owns_fds_;
  Done done_;
  std::function<void(int)> on_response_;
  IoWatch in_watch_;
  IoWatch out_watch_;
  bool in_always_ready_ = false;   // regular file: cannot be polled
  bool out_always_ready_ = false;
  bool in_eof_ = false;
  bool in_paused_ = false;
  bool out_blocked_ = false;
  bool out_shut_ = false;
  bool stream_closed_ = false;
  bool finished_ = false;
  bool in_pump_scheduled_ = false;
  bool watches_scheduled_ = false;
  RelayResult result_;
};

}  // namespace ambient::runtime

#endif  // AMBIENT_LIB_RUNTIME_RELAY_H_
