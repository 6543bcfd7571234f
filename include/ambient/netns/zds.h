// ambient/netns/zds.h: the ZDS handoff protocol between a node agent
// (istio-cni's role) and a node proxy (ztunnel's role), both ends.
//
// Wire. A unix SOCK_SEQPACKET socket (istio's default path is
// /var/run/ztunnel/ztunnel.sock); the agent listens, the proxy connects. One
// protobuf message (package istio.workload.zds, the same field numbers as
// istio's zds.proto) per datagram, no framing, at most 1024 bytes. The proxy
// first sends ZdsHello{V1}. Then the agent sends WorkloadRequests one at a
// time and waits for the WorkloadResponse{Ack} of each (lock-step; an Ack
// with a non-empty error is a refusal). AddWorkload carries the pod's netns
// descriptor as exactly one SCM_RIGHTS fd; no other message carries one.
//
// Flow. On each new connection the agent sends its whole pod cache as a
// snapshot: AddWorkload per pod whose netns it holds, KeepWorkload per pod it
// knows but could not open, then SnapshotSent. The proxy then drops every pod
// the snapshot did not name. Afterwards the agent sends AddWorkload to the
// newest proxy connection only and DelWorkload to all of them (during an
// upgrade an old and a new proxy are connected at once).
//
// Objects. The codec functions below turn messages into bytes and back
// (protobuf stays inside the library). ZdsProxy is the proxy end: it
// connects, says hello, keeps reconnecting (10 ms doubling to 15 s; only a
// connection that got its snapshot through starts the doubling over), applies
// snapshot semantics, and hands pods to a WorkloadHandler the host
// implements; the protocol state itself is ProxySession (zds_session.h),
// which hosts with their own event loop drive directly. ZdsAgent is the agent end: it listens,
// sends snapshots, adds and deletes, and reports what each proxy answered. It serves any number of
// proxies: each new connection owes its hello within io_timeout on its own
// deadline (at most 64 owe one at a time), so a silent one delays nobody.
#ifndef AMBIENT_NETNS_ZDS_H_
#define AMBIENT_NETNS_ZDS_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
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

namespace ambient::netns::zds {

inline constexpr size_t kMaxMessageSize = 1024;
inline constexpr char kDefaultSocketPath[] = "/var/run/ztunnel/ztunnel.sock";
// kMaxSocketPathLength is the longest socket path either end accepts: a
// sockaddr_un's sun_path (108 bytes on Linux) less its terminating NUL.
inline constexpr size_t kMaxSocketPathLength = 107;

// CheckSocketPath is the check ZdsProxy and ZdsAgent apply to
// socket_path before they connect or bind; hosts may call it to refuse a bad
// path early. Errors: InvalidArgument "ZDS socket path must be 1-107 bytes"
// (empty or longer than kMaxSocketPathLength) or "ZDS socket path contains a
// NUL byte".
absl::Status CheckSocketPath(absl::string_view path);

// WorkloadInfo describes the pod as the ZDS wire message does
// (istio.workload.zds WorkloadInfo fields 1-3: name, namespace,
// service_account). It is a message, not a directory entry: the node agent
// sends it with each Add and the node proxy only uses it to find the pod in
// its directory (runtime::Workload, looked up by uid, then by ns + name).
// The namespace field is spelled `ns` like every workload type of the
// library (runtime::Workload, authz::Workload, hbone::WorkloadInfo).
struct WorkloadInfo {
  std::string name;
  std::string ns;  // the wire's field 2, "namespace"
  std::string service_account;
};

enum class RequestType { kAdd, kKeep, kDel, kSnapshotSent };

// Request is one agent -> proxy WorkloadRequest, without its fd.
struct Request {
  RequestType type = RequestType::kSnapshotSent;
  std::string uid;                 // Add, Keep, Del
  bool has_workload_info = false;  // Add: whether workload_info was present
  WorkloadInfo workload_info;      // Add
};

// RequestTypeName returns "add", "keep", "del" or "snapshot_sent".
const char* RequestTypeName(RequestType type);

// --- Codec (no I/O). Every Decode rejects bytes that are not exactly one
// well-formed message of the expected type with InvalidArgument; none of them
// can crash on any input (they are fuzzed).

// EncodeHello returns ZdsHello{version: V1}.
std::string EncodeHello();
// DecodeHello accepts a ZdsHello with version V1. Errors: InvalidArgument for
// unparsable bytes, a missing version or any version other than V1.
absl::Status DecodeHello(absl::string_view bytes);

// EncodeRequest serializes `request`. Errors: InvalidArgument when the result
// would exceed kMaxMessageSize (e.g. a very long uid) or a string is not UTF-8.
absl::StatusOr<std::string> EncodeRequest(const Request& request);
// DecodeRequest parses a WorkloadRequest. Errors: InvalidArgument for bytes
// over kMaxMessageSize, unparsable bytes, an empty payload (no oneof field
// set), or an empty uid on add/keep/del.
absl::StatusOr<Request> DecodeRequest(absl::string_view bytes);

// EncodeAck returns WorkloadResponse{ack{error}}, cutting `error` so the
// message fits in kMaxMessageSize (at a UTF-8 character boundary).
std::string EncodeAck(absl::string_view error);
// DecodeAck returns the ack's error text ("" for success). Errors:
// InvalidArgument for unparsable bytes or a response without an ack.
absl::StatusOr<std::string> DecodeAck(absl::string_view bytes);

// --- Proxy end.

class ProxySession;  // ambient/netns/zds_session.h: the proxy end's state, sans-IO

// WorkloadHandler is what a node proxy does with pods. ZdsProxy calls it from
// its own thread, one call at a time.
class WorkloadHandler {
 public:
  virtual ~WorkloadHandler() = default;
  // AddWorkload starts capturing pod `uid` (for example: opens its
  // PodListenerSet inside `netns`). An error is sent to the agent as the
  // Ack's error text; the pod then stays "pending" and AddWorkload is tried
  // again every ZdsProxyOptions::retry_interval (with another handle on the
  // same netns) until it succeeds or the agent deletes the pod, as ztunnel
  // does. A pending pod keeps the proxy from being ready().
  virtual absl::Status AddWorkload(const std::string& uid, const WorkloadInfo& info,
                                   Netns netns) = 0;
  // RemoveWorkload stops capturing pod `uid`: the agent deleted it, a
  // snapshot did not name it, or it was re-added with a different netns (then
  // AddWorkload follows).
  virtual void RemoveWorkload(const std::string& uid) = 0;
  // OnSnapshotComplete: the agent's snapshot was applied (proxy is "ready").
  virtual void OnSnapshotComplete() {}
  // OnDisconnected: the connection to the agent ended (proxy not ready).
  virtual void OnDisconnected(const absl::Status& why) { (void)why; }
};

struct ZdsProxyOptions {
  std::string socket_path = kDefaultSocketPath;
  absl::Duration initial_backoff = absl::Milliseconds(10);
  absl::Duration max_backoff = absl::Seconds(15);
  // How often pods whose AddWorkload failed are tried again while connected;
  // absl::ZeroDuration() disables retries (a failed pod is then forgotten).
  absl::Duration retry_interval = absl::Seconds(5);
  LogSink log;  // called from the proxy thread (a ZdsClient: the loop thread); may be empty
};

// ZdsProxy is the node proxy end on a thread of its own: a thin driver of a
// ProxySession (zds_session.h) over a blocking socket, for hosts without an
// event loop (a host with one drives the session itself; ambient's runtime
// does: runtime::NodeProxy::StartZds). Threads: Start/Stop and the getters
// may be called from any thread; the handler and log run on the proxy's
// thread.
class ZdsProxy {
 public:
  // `handler` is not owned and must outlive the ZdsProxy.
  ZdsProxy(ZdsProxyOptions options, WorkloadHandler* handler);
  ~ZdsProxy();  // Stop()s
  ZdsProxy(const ZdsProxy&) = delete;
  ZdsProxy& operator=(const ZdsProxy&) = delete;

  // Start runs the connect / serve / reconnect loop on a new thread.
  // Errors: FailedPrecondition when already started; InvalidArgument for a
  // socket path that does not fit in sockaddr_un; ResourceExhausted.
  absl::Status Start();
  // Stop ends the loop (closing the connection) and joins the thread. Pods
  // stay as they are: the handler is not told to remove them. Idempotent.
  void Stop();

  // ServeConnection speaks the proxy end on an already connected
  // SOCK_SEQPACKET socket until the peer goes away, a read fails or Stop is
  // called, on the calling thread (for hosts that manage connections
  // themselves, and tests). Returns why it ended. Not to be combined with a
  // running Start() loop.
  absl::Status ServeConnection(UniqueFd conn);

  // Getters for readiness and tests. ready() is ztunnel's readiness:
  // connected, snapshot applied, and no pod pending a retry.
  bool connected() const;
  bool snapshot_complete() const;
  bool ready() const;
  size_t workload_count() const;
  size_t pending_count() const;
  uint64_t connect_count() const;

 private:
  void Loop();
  void Log(LogLevel level, absl::string_view message);
  // Perform carries out the session's actions on `conn` (the handler is
  // called without mu_ held); returns true, with `*ended`, once the session
  // said the connection is over.
  bool Perform(int conn, absl::Status* ended);

  ZdsProxyOptions options_;
  WorkloadHandler* handler_;
  UniqueFd stop_fd_;  // eventfd
  std::thread thread_;
  // std::mutex rather than absl::Mutex: Debian's Abseil is not built for
  // ThreadSanitizer, which then cannot see absl::Mutex synchronize.
  mutable std::mutex mu_;
  std::unique_ptr<ProxySession> session_;  // guarded by mu_; the protocol state
};

// --- Agent end.

struct ZdsAgentOptions {
  std::string socket_path = kDefaultSocketPath;
  absl::Duration io_timeout = absl::Seconds(5);  // per message and per ack
  // Called from the agent's thread and from callers of its methods, sometimes
  // with the agent's lock held: it must not call back into the agent. May be empty.
  LogSink log;
};

// ZdsAgent is the node agent end. It owns a listening socket at
// options.socket_path (a stale socket file there is replaced; any other kind
// of file is an error) and a thread that accepts proxies and sends each one
// the snapshot. Snapshots are sent by that thread one request at a time
// without blocking it: a proxy that stops acknowledging half-way delays
// neither other proxies nor the agent's methods, and is dropped io_timeout
// after its last unanswered request. All methods are thread-safe; those
// that send (AddWorkload, DelWorkload) wait for the proxies' acks, up to
// io_timeout each.
class ZdsAgent {
 public:
  // Start binds and listens. Errors: InvalidArgument for a path that does not
  // fit in sockaddr_un; AlreadyExists when a non-socket file is in the way;
  // NotFound when the directory does not exist; PermissionDenied.
  static absl::StatusOr<std::unique_ptr<ZdsAgent>> Start(ZdsAgentOptions options);
  ~ZdsAgent();  // stops the thread, closes every connection, removes the socket file
  ZdsAgent(const ZdsAgent&) = delete;
  ZdsAgent& operator=(const ZdsAgent&) = delete;

  // AddWorkload records the pod (holding its own duplicate of `netns`) and
  // sends AddWorkload to the newest proxy that finished its snapshot, waiting
  // for the ack. A pod added again replaces the recorded one. Errors:
  // InvalidArgument for an empty uid or an empty netns; Unavailable when no
  // proxy is connected (the pod is still recorded and will be in the next
  // snapshot) or the proxy went away or timed out; Aborted with the proxy's
  // text when it refused.
  absl::Status AddWorkload(const std::string& uid, const WorkloadInfo& info, const Netns& netns);
  // KeepWorkload records a pod whose netns the agent cannot open: snapshots
  // name it with KeepWorkload (nothing is sent now). Errors: InvalidArgument.
  absl::Status KeepWorkload(const std::string& uid);
  // DelWorkload forgets the pod and sends DelWorkload to every connected
  // proxy, waiting for each ack. Errors: InvalidArgument for an empty uid;
  // the first proxy failure (Unavailable, Aborted), after trying all.
  absl::Status DelWorkload(const std::string& uid);

  // proxy_count returns how many proxies are connected and past their snapshot.
  size_t proxy_count() const;
  // WaitForProxies blocks until proxy_count() >= n or `timeout` passes.
  // Errors: DeadlineExceeded.
  absl::Status WaitForProxies(size_t n, absl::Duration timeout) const;
  const std::string& socket_path() const { return options_.socket_path; }

 private:
  struct Pod {
    WorkloadInfo info;
    Netns netns;  // empty for a kept pod
  };
  struct Conn {
    UniqueFd fd;
    uint64_t serial = 0;
    bool broken = false;
    // The snapshot, driven by the agent thread (Pump): uids still to send
    // (looked up in pods_ when sent; a uid sent before and gone since is
    // sent as a delete), then SnapshotSent. `ready` once that was acked:
    // from then on adds and deletes go out synchronously (Exchange).
    bool ready = false;
    std::deque<std::string> todo;
    std::set<std::string> sent;  // uids this proxy was told to add or keep
    bool snapshot_sent = false;  // SnapshotSent is out (or acked)
    std::string awaiting;        // the request whose ack is due ("" if none)
    absl::Time deadline;         // ... by then
    size_t snapshot_pods = 0;
  };
  // A connection accepted but not greeted yet: it must send its hello by
  // `deadline` (io_timeout after the accept). Agent thread only.
  struct Greeting {
    UniqueFd fd;
    absl::Time deadline;
  };
  explicit ZdsAgent(ZdsAgentOptions options);
  void Loop();
  void LoopOnce();
  void Log(LogLevel level, absl::string_view message);
  void AcceptOne();
  void Greet(UniqueFd fd);  // reads the ready hello, starts the snapshot
  // Pump sends `conn`'s next snapshot request when none is awaiting its ack;
  // OnSnapshotAck reads the ack that arrived. Agent thread, mu_ held; never block.
  void Pump(Conn& conn);
  void OnSnapshotAck(Conn& conn);
  void Break(Conn& conn, absl::string_view why);  // mu_ held
  // QueueForSnapshots appends `uid` to every snapshot in progress. mu_ held.
  void QueueForSnapshots(const std::string& uid);
  // Exchange sends one request (and fd) on `conn` and waits for its ack.
  // mu_ held.
  absl::Status Exchange(Conn& conn, const Request& request, int fd);
  size_t LiveConns() const;  // mu_ held
  void Wake();

  ZdsAgentOptions options_;
  UniqueFd listen_fd_;
  UniqueFd stop_fd_;  // eventfd, signalled once by the destructor
  UniqueFd wake_fd_;  // eventfd: a connection was marked broken
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  // Guarded by mu_ (see ZdsProxy::mu_ on why std::mutex); conns_changed_ is
  // notified whenever a connection is added or marked broken.
  mutable std::mutex mu_;
  mutable std::condition_variable conns_changed_;
  std::map<std::string, Pod> pods_;           // snapshots go in uid order
  std::vector<std::unique_ptr<Conn>> conns_;  // oldest first
  uint64_t next_serial_ = 0;
  std::vector<Greeting> greeting_;  // agent thread only
};

}  // namespace ambient::netns::zds

#endif  // AMBIENT_NETNS_ZDS_H_
