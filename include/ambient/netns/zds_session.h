// ambient/netns/zds_session.h: the node proxy end of ZDS as a pure state
// machine (no sockets, threads or clocks), and the two datagram calls a host
// needs to drive it over its own socket.
//
// Object model. A ProxySession holds what the proxy end knows: which pods
// are captured (uid -> netns identity), which are pending a retry because
// the host's AddWorkload failed, and the per-connection snapshot progress.
// The host feeds it events:
//
//   Connected(now)             a SOCK_SEQPACKET connection to the agent is up
//   Receive(bytes, fds, ...)   one datagram arrived (fds: its SCM_RIGHTS)
//   AddWorkloadDone(call, st)  the host finished an AddWorkload it was asked for
//   Tick(now)                  time passed (call it at next_deadline())
//   Closed(why)                the connection ended (read/write error, hang-up, stop)
//
// and drains what the session wants done with NextAction(): a datagram to
// send (the hello, each Ack), a handler call to make (add, remove, snapshot
// complete), or "disconnected" (close the socket, reconnect after the
// back-off, tell the handler). Actions come out in the order they must be
// performed. An AddWorkload may complete later (asynchronously): the Ack of
// its request is only produced by AddWorkloadDone, and until then
// wants_datagram() is false, so the host stops reading (the agent works in
// lock-step and waits for the Ack anyway).
//
// Semantics (what ZdsProxy has always done; see zds.h for the protocol):
// snapshot_sent drops every pod the snapshot did not name; a pod re-added
// with another netns is removed, then added; a failed AddWorkload is refused
// to the agent and, with a retry_interval, kept pending and tried again at
// each retry deadline (one retry round at a time, not reading meanwhile)
// until it succeeds or the agent deletes it; a datagram that is truncated,
// or is not one well-formed WorkloadRequest, is answered with an error Ack
// and ends the connection. Every Ack with an error is logged at warn
// ("refused request: ...").
//
// Threads: none of its own. A ProxySession is used by one thread at a time;
// the log sink is called from inside the calls above.
#ifndef AMBIENT_NETNS_ZDS_SESSION_H_
#define AMBIENT_NETNS_ZDS_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ambient/base/log.h"
#include "ambient/netns/fd.h"
#include "ambient/netns/netns.h"
#include "ambient/netns/zds.h"

namespace ambient::netns::zds {

struct ProxySessionOptions {
  // How long after a pod became pending (or after the last retry round) its
  // AddWorkload is tried again; absl::ZeroDuration() disables retries (a
  // failed pod is then forgotten).
  absl::Duration retry_interval = absl::Seconds(5);
  LogSink log;  // component "zds"; may be empty
};

// ProxyAction is one thing the session asks its host to do.
struct ProxyAction {
  enum class Kind {
    // Send `bytes` as one datagram (no descriptor). A failed send is
    // reported back with Closed().
    kSend,
    // Call the handler's AddWorkload(uid, info, netns) (netns is owned by the
    // action), then AddWorkloadDone(call, its status), now or later.
    kAddWorkload,
    // Call the handler's RemoveWorkload(uid).
    kRemoveWorkload,
    // The agent's snapshot was applied: call OnSnapshotComplete().
    kSnapshotComplete,
    // The connection is over, for `status`: close the socket (if it is still
    // open), call OnDisconnected(status) and reconnect after the back-off.
    kDisconnected,
  };
  Kind kind = Kind::kSend;
  std::string bytes;    // kSend
  uint64_t call = 0;    // kAddWorkload
  std::string uid;      // kAddWorkload, kRemoveWorkload
  WorkloadInfo info;    // kAddWorkload
  Netns netns;          // kAddWorkload
  absl::Status status;  // kDisconnected
};

class ProxySession {
 public:
  explicit ProxySession(ProxySessionOptions options = {});
  ProxySession(const ProxySession&) = delete;
  ProxySession& operator=(const ProxySession&) = delete;

  // Connected starts a new connection: queues the hello (kSend) and forgets
  // the previous connection's snapshot progress. Pods stay. A session still
  // connected is first closed (kDisconnected, Aborted "replaced by a new
  // connection").
  void Connected(absl::Time now);

  // Receive applies one datagram: `bytes` (at most kMaxMessageSize),
  // every descriptor that came with it (the session closes the ones it does
  // not adopt) and whether the kernel truncated the datagram or its
  // ancillary data. Errors (nothing changes, the fds are closed):
  // FailedPrecondition when !wants_datagram(). Protocol errors are not
  // returned: they are answered with an error Ack (and, for a malformed
  // datagram, kDisconnected).
  absl::Status Receive(absl::string_view bytes, std::vector<UniqueFd> fds, bool truncated,
                       absl::Time now);

  // AddWorkloadDone reports the result of the kAddWorkload action `call`.
  // Success captures the pod; an error makes it pending (with retries) and,
  // when the call answered a request of the current connection, is sent to
  // the agent as the Ack's error text. Errors: NotFound for a call that is
  // not outstanding (nothing changes).
  absl::Status AddWorkloadDone(uint64_t call, const absl::Status& result, absl::Time now);

  // Tick lets time pass: at or after next_deadline() it starts a retry round
  // (kAddWorkload for each pending pod, one at a time).
  void Tick(absl::Time now);

  // Closed reports that the connection ended (peer hung up, read or write
  // failed, the host stops). Queues kDisconnected(why) when the session was
  // connected; otherwise does nothing. An AddWorkload still outstanding may
  // complete later: its result is recorded, no Ack is sent.
  void Closed(const absl::Status& why);

  // NextAction pops the next action, or nullopt when there is none.
  std::optional<ProxyAction> NextAction();

  // next_deadline is when Tick must be called next (InfiniteFuture: never).
  absl::Time next_deadline() const;
  // wants_datagram: connected, and no AddWorkload or retry round outstanding.
  bool wants_datagram() const;

  bool connected() const { return connected_; }
  bool snapshot_complete() const { return snapshot_complete_; }
  // ready is ztunnel's readiness: connected, snapshot applied, nothing pending.
  bool ready() const { return connected_ && snapshot_complete_ && pending_.empty(); }
  size_t workload_count() const { return workloads_.size(); }
  size_t pending_count() const { return pending_.size(); }
  uint64_t connect_count() const { return connects_; }
  uint64_t snapshot_count() const { return snapshots_; }  // over all connections

 private:
  struct Pending {
    WorkloadInfo info;
    Netns netns;
  };
  // The one AddWorkload outstanding.
  struct InFlight {
    uint64_t call = 0;
    std::string uid;
    NetnsId id;
    WorkloadInfo info;
    Netns spare;              // a second handle, for retries (request only)
    bool retry = false;       // part of a retry round
    uint64_t connection = 0;  // which connection's request it answers
  };

  void Log(LogLevel level, absl::string_view message);
  void Ack(absl::string_view error);
  void Disconnect(absl::Status why);
  // Handle applies one request; returns true when it asked for an
  // AddWorkload (the Ack then waits for AddWorkloadDone).
  bool Handle(absl::string_view bytes, std::vector<UniqueFd> fds, bool truncated);
  void NextRetry(absl::Time now);  // issues the next retry of the round, or ends it
  void UpdateDeadline(absl::Time now);

  ProxySessionOptions options_;
  std::deque<ProxyAction> actions_;
  bool connected_ = false;
  bool snapshot_complete_ = false;
  uint64_t connects_ = 0;
  uint64_t snapshots_ = 0;
  uint64_t next_call_ = 1;
  absl::flat_hash_map<std::string, NetnsId> workloads_;
  std::map<std::string, Pending> pending_;
  std::optional<InFlight> in_flight_;
  std::deque<std::string> retry_round_;  // uids still to retry in this round
  bool in_round_ = false;
  absl::Time retry_deadline_ = absl::InfiniteFuture();
  // Per connection.
  absl::flat_hash_set<std::string> seen_;
  bool snapshot_sent_ = false;
};

// --- Datagram I/O for hosts that drive a ProxySession on their own loop
// (non-blocking sockets; neither call waits).

// Datagram is one received ZDS datagram.
struct Datagram {
  std::string bytes;               // at most kMaxMessageSize
  std::vector<UniqueFd> fds;       // every SCM_RIGHTS fd received (close-on-exec)
  bool truncated = false;          // the datagram was longer than kMaxMessageSize
  bool control_truncated = false;  // more ancillary data than there was room for
};

// ReceiveDatagramNow reads one datagram from `fd` if one is ready. Errors:
// DeadlineExceeded when none is ready; Unavailable when the peer closed or
// the read failed.
absl::StatusOr<Datagram> ReceiveDatagramNow(int fd);

// SendDatagramNow sends `bytes` as one datagram without waiting (never
// raises SIGPIPE). Errors: InvalidArgument for bytes over kMaxMessageSize;
// DeadlineExceeded when the socket buffer is full; the errno of sendmsg.
absl::Status SendDatagramNow(int fd, absl::string_view bytes);

}  // namespace ambient::netns::zds

#endif  // AMBIENT_NETNS_ZDS_SESSION_H_
