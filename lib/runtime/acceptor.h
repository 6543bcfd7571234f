// Acceptor: the accept path every listener of the runtime shares (the HBONE
// server, the node proxy's 15001/15006/15008). It holds under floods:
//  - when accept() fails for lack of resources (EMFILE, ENFILE, ENOBUFS,
//    ENOMEM) it stops watching the listener for a back-off instead of
//    spinning on a level-triggered fd that stays readable, and logs once
//    per interval with the count of failures;
//  - it caps the live connections it handed out (per listener, and in total
//    through a shared ConnectionBudget); at a cap the listener is not
//    watched, so new connections wait in the kernel's backlog;
//  - its owner can hold it (e.g. too many handshakes in flight).
#ifndef AMBIENT_LIB_RUNTIME_ACCEPTOR_H_
#define AMBIENT_LIB_RUNTIME_ACCEPTOR_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ambient/base/log.h"
#include "ambient/runtime/event_loop.h"

namespace ambient::runtime {

class Acceptor;

// ConnectionBudget is a cap on the connections of several acceptors
// together (e.g. all listeners of a node proxy). Loop thread only.
class ConnectionBudget {
 public:
  explicit ConnectionBudget(size_t max) : max_(max) {}
  ConnectionBudget(const ConnectionBudget&) = delete;
  ConnectionBudget& operator=(const ConnectionBudget&) = delete;
  size_t max() const { return max_; }
  size_t used() const { return used_; }

 private:
  friend class Acceptor;
  bool Take();
  void Give(size_t n);
  size_t max_;
  size_t used_ = 0;
  std::vector<Acceptor*> acceptors_;
};

struct AcceptorOptions {
  // Live connections from this listener at most (0 = no cap).
  size_t max_connections = 0;
  // Optional cap shared with other acceptors.
  std::shared_ptr<ConnectionBudget> budget;
  // How long the listener rests after accept() ran out of descriptors or
  // memory.
  absl::Duration backoff = absl::Milliseconds(100);
  // At most one log line per this interval about failed accepts.
  absl::Duration log_interval = absl::Seconds(1);
  LogSink log;
  std::string component = "accept";  // the log lines' component
  std::string name;                  // e.g. the listen address, in log lines
  // Whether the acceptor closes the listener (Stop, destructor).
  bool owns_fd = true;
};

struct AcceptorStats {
  uint64_t accepted = 0;
  uint64_t resource_errors = 0;  // EMFILE/ENFILE/ENOBUFS/ENOMEM
  uint64_t backoffs = 0;         // times the listener rested after those
  uint64_t cap_pauses = 0;       // times a connection cap stopped accepting
};

class Acceptor {
 public:
  // OnConnection gets each accepted socket (non-blocking, close-on-exec,
  // TCP tuned); it owns it and must call Release() once when it is closed.
  using OnConnection = std::function<void(int fd)>;

  // The acceptor watches `listen_fd` (non-blocking, listening) from Start
  // on and hands each connection to `on_connection`; it closes the fd in
  // Stop or when destroyed (when options.owns_fd).
  Acceptor(EventLoop* loop, int listen_fd, AcceptorOptions options, OnConnection on_connection);
  // Pull mode, for owners with their own accept loop: `on_readable` runs
  // when connections may be waiting, and takes them with Next().
  static std::unique_ptr<Acceptor> Pulling(EventLoop* loop, int listen_fd, AcceptorOptions options,
                                           std::function<void()> on_readable);
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  absl::Status Start();
  // Stop stops accepting for good and closes the listener. Connections
  // handed out stay counted until released.
  void Stop();
  // Next accepts one connection (non-blocking, close-on-exec, TCP tuned;
  // the caller owns it): Unavailable when none is waiting, at a cap, held,
  // or resting after a resource error (then the listener is not watched
  // until it may accept again).
  absl::StatusOr<int> Next();
  // Release says one connection handed out is closed. Only needed when a
  // cap (max_connections, budget) is set: without one nothing is counted
  // against anything.
  void Release();
  // SetHeld holds (true) or resumes (false) accepting for the owner's own
  // reason, e.g. too many handshakes in flight.
  void SetHeld(bool held);
  // SetMaxConnections replaces options.max_connections (closes nothing).
  void SetMaxConnections(size_t max);

  int fd() const { return fd_; }
  size_t live() const { return live_; }
  bool watching() const { return watching_; }
  const AcceptorStats& stats() const { return stats_; }

 private:
  friend class ConnectionBudget;
  void OnReadable();
  void Update();  // watch the listener iff nothing stops us
  bool AtCap() const;
  void ResourceError(int err);

  EventLoop* loop_;
  int fd_;
  AcceptorOptions opts_;
  OnConnection on_connection_;
  std::function<void()> on_readable_;  // pull mode
  IoWatch watch_;
  Timer backoff_;
  bool started_ = false;
  bool held_ = false;
  bool resting_ = false;
  bool watching_ = false;
  size_t live_ = 0;
  AcceptorStats stats_;
  // Failed accepts since the last log line, and when that line went out.
  uint64_t unlogged_errors_ = 0;
  absl::Time last_log_ = absl::InfinitePast();
};

}  // namespace ambient::runtime

#endif  // AMBIENT_LIB_RUNTIME_ACCEPTOR_H_
