// An HBONE server's accepted CONNECT while its upstream (a TCP connect or
// one more HBONE hop) is being set up.
#ifndef AMBIENT_LIB_RUNTIME_HBONE_INBOUND_H_
#define AMBIENT_LIB_RUNTIME_HBONE_INBOUND_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ambient/hbone/connection.h"
#include "runtime/session.h"

namespace ambient::runtime {

// InboundConnect is one CONNECT the server accepted: where it came from and
// what it asked.
struct InboundConnect {
  Session* session = nullptr;
  uint64_t sid = 0;  // the server's id of `session`
  hbone::StreamId id = 0;
  hbone::ConnectRequest request;
  std::optional<identity::SpiffeId> identity;  // the client's (set once accepted)
  absl::Time started;
};

class PendingUpstream;

// InboundHost is what an accepted CONNECT needs from its server (the
// HboneServer) while its upstream is set up. Loop thread.
class InboundHost {
 public:
  virtual ~InboundHost() = default;
  // Track / Forget: `p` is waiting (the host orphans it when it goes first).
  virtual void Track(PendingUpstream* p) = 0;
  virtual void Forget(PendingUpstream* p) = 0;
  // UpstreamSettled: the upstream attempt of `in` is over (its pending
  // slot is free again); one of UpstreamFailed or Reply follows.
  virtual void UpstreamSettled(const InboundConnect& in) = 0;
  // UpstreamCancelled: the client reset the stream (or its connection went)
  // while the upstream was being set up; `why` is the stream's status.
  virtual void UpstreamCancelled(const InboundConnect& in, const absl::Status& why) = 0;
  // UpstreamFailed answers 503 on `in`'s stream and logs its record.
  virtual void UpstreamFailed(const InboundConnect& in, absl::Status why) = 0;
  // Reply answers 200 on `in`'s stream and relays it to `fd` (owned); false
  // when the stream is gone (fd closed). `on_end` runs when the relay is
  // over, with its status (which it may change) before the record is logged.
  virtual bool Reply(const InboundConnect& in, int fd,
                     std::function<void(absl::Status*)> on_end) = 0;
};

// PendingUpstream listens on an accepted CONNECT's stream until its upstream
// answers (Settle) or the stream goes first (then `cancel` ends the upstream
// attempt and the host reports the cancellation). It frees itself through
// the loop (EventLoop::DeleteSoon) once settled or closed.
class PendingUpstream final : public StreamListener {
 public:
  // Attach makes one for `in` and attaches it to `in`'s stream.
  static PendingUpstream* Attach(InboundHost* host, InboundConnect in);

  const InboundConnect& in() const { return in_; }
  // set_cancel: how to end the upstream attempt if the stream goes first.
  void set_cancel(std::function<void()> cancel) { cancel_ = std::move(cancel); }
  // Settle: the upstream answered. Stops listening, frees the pending slot
  // and returns the host to answer the stream with (null when the server is
  // gone: then nobody answers). `this` stays valid until the loop's
  // deferred deletes run.
  InboundHost* Settle();
  // Orphan: the host is gone.
  void Orphan() { host_ = nullptr; }

  void OnReadable() override {}
  void OnWritable() override {}
  void OnClosed(const absl::Status& status) override;

 private:
  PendingUpstream(InboundHost* host, InboundConnect in) : host_(host), in_(std::move(in)) {}
  void Done();

  InboundHost* host_;
  InboundConnect in_;
  std::function<void()> cancel_;
  bool done_ = false;
};

}  // namespace ambient::runtime

#endif  // AMBIENT_LIB_RUNTIME_HBONE_INBOUND_H_
