// ambient/runtime/zds_client.h: the node proxy end of ZDS on an EventLoop.
//
// Object model. A ZdsClient drives a netns::zds::ProxySession (the protocol
// state, zds_session.h) over a non-blocking SOCK_SEQPACKET socket watched by
// an IoWatch, with Timers for the reconnect back-off and the pending-pod
// retry deadline: no thread, no blocking call. It connects to the node
// agent, says hello, keeps reconnecting (initial_backoff doubling to
// max_backoff; only a connection that got its snapshot through starts the
// doubling over) and calls the host's handlers on the loop thread. An add
// may finish later: the handler gets a call id and the host reports the
// result with AddDone, on the loop thread, whenever it is ready; the client
// stops reading from the agent meanwhile (the agent waits for the Ack
// anyway) and the loop serves everything else.
//
// Threads: everything, including construction and destruction, on the
// loop's thread (or while the loop is not running). Destroying a ZdsClient
// closes the connection at once, calls no handler, and makes outstanding
// call ids meaningless (AddDone must not be called on a destroyed client).
#ifndef AMBIENT_RUNTIME_ZDS_CLIENT_H_
#define AMBIENT_RUNTIME_ZDS_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ambient/netns/fd.h"
#include "ambient/netns/netns.h"
#include "ambient/netns/zds.h"
#include "ambient/netns/zds_session.h"
#include "ambient/runtime/event_loop.h"

namespace ambient::runtime {

struct ZdsClientHandlers {
  // add starts capturing pod `uid` in `netns` and, now (from inside this
  // call) or later, calls ZdsClient::AddDone(call, result) exactly once. An
  // error is sent to the agent as the Ack's text; the pod then stays pending
  // and is added again at each retry deadline. Required.
  std::function<void(uint64_t call, const std::string& uid, const netns::zds::WorkloadInfo& info,
                     netns::Netns netns)>
      add;
  // remove stops capturing pod `uid`: the agent deleted it, a snapshot did
  // not name it, or it came back with another netns (add follows). Required.
  std::function<void(const std::string& uid)> remove;
  // snapshot_complete: the agent's snapshot was applied. Optional.
  std::function<void()> snapshot_complete;
  // disconnected: the connection ended (Cancelled when Stop ended it).
  // Optional.
  std::function<void(const absl::Status& why)> disconnected;
};

class ZdsClient {
 public:
  // New makes a stopped client. `options` are ZdsProxy's (socket path,
  // back-off, retry interval, log: component "zds", called on the loop
  // thread). Errors: InvalidArgument for a NULL loop, missing add/remove
  // handlers, a socket path that does not fit in sockaddr_un, or a back-off
  // that is not 0 < initial <= max.
  static absl::StatusOr<std::unique_ptr<ZdsClient>> New(EventLoop* loop,
                                                        netns::zds::ZdsProxyOptions options,
                                                        ZdsClientHandlers handlers);
  ~ZdsClient();
  ZdsClient(const ZdsClient&) = delete;
  ZdsClient& operator=(const ZdsClient&) = delete;

  // Start makes the first connection attempt (now, from inside this call)
  // and keeps reconnecting. Errors: FailedPrecondition when started.
  absl::Status Start();
  // Stop closes the connection (disconnected(Cancelled) when it was up) and
  // stops reconnecting; pods stay as they are. Start may be called again.
  void Stop();

  // AddDone reports the result of the add handler call `call`. Errors:
  // NotFound for a call that is not outstanding (nothing changes).
  absl::Status AddDone(uint64_t call, const absl::Status& result);

  // The session's state (ready(): connected, snapshot applied, nothing
  // pending), for readiness probes and tests.
  const netns::zds::ProxySession& session() const { return session_; }
  bool started() const { return started_; }

 private:
  ZdsClient(EventLoop* loop, netns::zds::ZdsProxyOptions options, ZdsClientHandlers handlers);
  void Connect();
  void OnReadable();
  // Perform carries out the session's actions; re-entrant calls (AddDone
  // from inside the add handler) leave the work to the outer one.
  void Perform();
  void CloseSocket();
  void ScheduleReconnect();

  EventLoop* loop_;
  netns::zds::ZdsProxyOptions options_;
  ZdsClientHandlers handlers_;
  netns::zds::ProxySession session_;
  netns::UniqueFd fd_;
  IoWatch watch_;
  Timer reconnect_;
  Timer retry_;
  absl::Duration backoff_;
  absl::Time last_said_ = absl::InfinitePast();
  uint64_t snapshots_at_connect_ = 0;
  bool started_ = false;
  bool performing_ = false;
  bool destroying_ = false;
};

}  // namespace ambient::runtime

#endif  // AMBIENT_RUNTIME_ZDS_CLIENT_H_
