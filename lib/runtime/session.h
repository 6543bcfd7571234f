// Session: one hbone::Connection driven over one TCP socket on an EventLoop.
// It reads into the loop's scratch buffer and feeds the connection, writes
// the connection's output, arms a timer on its next deadline, and routes
// the connection's events: stream events to the StreamListener attached to
// the stream, connection events to the SessionOwner. It destroys itself
// (deferred) after reporting OnSessionClosed.
#ifndef AMBIENT_LIB_RUNTIME_SESSION_H_
#define AMBIENT_LIB_RUNTIME_SESSION_H_

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ambient/hbone/connection.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/socket.h"

namespace ambient::runtime {

class Session;

class StreamListener {
 public:
  virtual ~StreamListener() = default;
  // The CONNECT's response: its status and its non-pseudo headers.
  virtual void OnResponse(int http_status, const std::vector<hbone::Header>& headers) {
    (void)http_status;
    (void)headers;
  }
  virtual void OnReadable() = 0;
  virtual void OnWritable() = 0;
  // The stream is over; the listener is detached and must not use the
  // stream id again.
  virtual void OnClosed(const absl::Status& status) = 0;
};

class SessionOwner {
 public:
  virtual ~SessionOwner() = default;
  virtual void OnEstablished(Session* session) { (void)session; }
  virtual void OnStreamRequest(Session* session, hbone::StreamId id,
                               const hbone::ConnectRequest& request) {
    (void)session;
    (void)id;
    (void)request;
  }
  virtual void OnGoaway(Session* session) { (void)session; }
  virtual void OnIdle(Session* session) { (void)session; }
  // Last call: the session is deleted right after (deferred).
  virtual void OnSessionClosed(Session* session, const absl::Status& status) = 0;
};

// OrphanSessionOwner is the owner of sessions whose server or client is
// gone: it rejects new streams (503) and ignores the rest. A process-wide
// stateless object, never destroyed.
SessionOwner* OrphanSessionOwner();

class Session {
 public:
  // Takes ownership of `fd` (connected, non-blocking) and `conn`.
  Session(EventLoop* loop, int fd, std::unique_ptr<hbone::Connection> conn, SessionOwner* owner);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Start begins the handshake and watches the socket.
  void Start();
  hbone::Connection* conn() { return conn_.get(); }
  EventLoop* loop() { return loop_; }
  const SocketAddress& peer() const { return peer_; }
  const SocketAddress& local() const { return local_; }
  // peer() / local() as text ("ip:port", "[v6]:port"), formatted once per
  // connection (every stream's access-log record needs them).
  const std::string& peer_text() const {
    if (peer_text_.empty()) peer_text_ = peer_.ToString();
    return peer_text_;
  }
  const std::string& local_text() const {
    if (local_text_.empty()) local_text_ = local_.ToString();
    return local_text_;
  }
  bool closed() const { return closed_; }

  // Attach routes stream `id`'s events to `listener` (until OnClosed).
  void Attach(hbone::StreamId id, StreamListener* listener) { listeners_[id] = listener; }
  void Detach(hbone::StreamId id) { listeners_.erase(id); }
  // Kick schedules output flushing and event dispatch at the end of the
  // current loop iteration (after StreamWrite/Consume/...).
  void Kick();
  // Abort ends the connection now.
  void Abort(absl::Status status);
  // ExpectBytesWithin aborts the connection (DeadlineExceeded) when the peer
  // has sent no byte at all `d` after this call: a connection that says
  // nothing gets less time than the handshake deadline. Before Start.
  void ExpectBytesWithin(absl::Duration d);
  // owner can be replaced (the pool hands sessions around).
  void set_owner(SessionOwner* owner) { owner_ = owner; }

 private:
  void OnIo(uint32_t events);
  void Process();
  bool Flush();
  void Dispatch(hbone::Event& ev);
  void Close(const absl::Status& status);

  EventLoop* loop_;
  int fd_;
  std::unique_ptr<hbone::Connection> conn_;
  SessionOwner* owner_;
  IoWatch watch_;
  Timer timer_;
  Timer silent_timer_;  // ExpectBytesWithin
  absl::Duration silent_after_;
  SocketAddress peer_;
  SocketAddress local_;
  mutable std::string peer_text_;
  mutable std::string local_text_;
  std::unordered_map<hbone::StreamId, StreamListener*> listeners_;
  bool kicked_ = false;
  bool closed_ = false;
  bool in_process_ = false;
  bool linger_armed_ = false;
  absl::Status close_status_;
};

}  // namespace ambient::runtime

#endif  // AMBIENT_LIB_RUNTIME_SESSION_H_
