// ambient/xds/control_plane_connection.h: one connection to istiod, kept up
// on a runtime::EventLoop.
//
// Object model. A ControlPlaneConnection hosts a grpc::Channel
// (ambient/grpc/channel.h) on an EventLoop: it resolves the server address
// (a numeric IP, or a name through getaddrinfo on the loop thread, at each
// attempt; a name with several addresses is tried one address per attempt, in
// turn), connects without blocking,
// moves the bytes through an IoWatch (in the clear, or under the
// server-verified TLS of ambient/grpc/tls.h, as ztunnel talks to istiod on
// :15012), runs the channel's timers, and after any failure (connection
// refused, reset, GOAWAY, a broken TLS handshake) closes the socket and
// connects again after a backoff: 10 ms doubling up to 15 s (ztunnel's), each
// wait jittered by up to a quarter of it. The backoff is reset only by
// ResetBackoff(), which a user calls once a call got a response through, so a
// server that accepts and then fails every stream is not hammered.
//
// Every call carries ztunnel's two headers: `authorization: Bearer <token>`
// with the token file's contents (re-read at each connect and whenever its
// mtime changed since it was last read; no header while the file is missing
// or empty) and `clusterid`.
//
// Two kinds of users share a connection. One stream owner (AdsClient,
// ambient/xds/ads_client.h) sets Handlers: on_connected runs each time the
// connection is up, on_event gets the events of the calls it started itself
// (StartCall), on_disconnected runs when the connection broke. Unary calls
// (Call, e.g. the Istio CA's CreateCertificate) wait for the connection, and
// end with their callback exactly once.
//
// Threads: the loop's thread only. Callbacks run on the loop and must not
// destroy the connection.
#ifndef AMBIENT_XDS_CONTROL_PLANE_CONNECTION_H_
#define AMBIENT_XDS_CONTROL_PLANE_CONNECTION_H_

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ambient/grpc/channel.h"
#include "ambient/runtime/event_loop.h"

struct ssl_ctx_st;

namespace ambient::xds {

// Backoff is ztunnel's reconnect delay: `initial` doubling up to `max`, each
// delay jittered down by up to a quarter of it.
class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max, uint64_t seed);
  // Next returns the next delay and doubles the base.
  absl::Duration Next();
  void Reset() { current_ = initial_; }

 private:
  absl::Duration initial_, max_, current_;
  std::mt19937_64 rng_;
};

struct ConnectionOptions {
  // "host:port" or "[v6]:port"; host is a numeric IP or a DNS name.
  std::string address;
  // TLS: when `roots_pem_file` is set, the server's certificate must chain
  // to its certificates and name `server_name`.
  std::string roots_pem_file;
  std::string server_name = "istiod.istio-system.svc";
  // The bearer token file (e.g. /var/run/secrets/tokens/istio-token); empty:
  // no authorization header.
  std::string token_file;
  std::string cluster_id = "Kubernetes";
  absl::Duration backoff_initial = absl::Milliseconds(10);
  absl::Duration backoff_max = absl::Seconds(15);
  // A TCP connect (plus, with TLS, nothing more) not done in this time fails.
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration keepalive_interval = absl::Seconds(30);
  absl::Duration keepalive_timeout = absl::Seconds(10);
  // A received message over this ends its call with ResourceExhausted.
  size_t max_receive_message = size_t{64} << 20;
};

struct ConnectionStats {
  uint64_t connect_attempts = 0;
  uint64_t connects = 0;  // TCP connections established
  uint64_t failures = 0;  // attempts that failed + connections that broke
};

class ControlPlaneConnection {
 public:
  struct Handlers {
    std::function<void()> on_connected;
    std::function<void(const grpc::CallEvent&)> on_event;
    std::function<void(const absl::Status&)> on_disconnected;
  };
  using CallDone = std::function<void(absl::StatusOr<std::string>)>;

  // New checks the options (address syntax; the TLS roots file is read and
  // must hold certificates) and connects nothing yet. Errors:
  // InvalidArgument (bad address, bad roots), those of ReadFileBounded.
  // `loop` is borrowed and must outlive the connection.
  static absl::StatusOr<std::unique_ptr<ControlPlaneConnection>> New(runtime::EventLoop* loop,
                                                                     ConnectionOptions options);
  ~ControlPlaneConnection();
  ControlPlaneConnection(const ControlPlaneConnection&) = delete;
  ControlPlaneConnection& operator=(const ControlPlaneConnection&) = delete;

  // SetHandlers installs the stream owner's callbacks (before Start).
  void SetHandlers(Handlers handlers) { handlers_ = std::move(handlers); }
  // Start connects now (and keeps reconnecting until destroyed).
  void Start();

  // connected: a channel is up and accepts calls (not after the server's
  // GOAWAY: once the calls it accepted are over, the connection is made again).
  bool connected() const {
    return channel_ != nullptr && fd_ >= 0 && !connecting_ && !failing_ && !channel_->draining();
  }

  // StartCall / SendMessage / CloseSend / Cancel: grpc::Channel's calls on
  // the current channel, with the bearer and clusterid headers, written out
  // at once. Errors: FailedPrecondition when not connected; the channel's.
  absl::StatusOr<grpc::CallId> StartCall(absl::string_view method, absl::Time deadline);
  absl::Status SendMessage(grpc::CallId call, absl::string_view message);
  absl::Status CloseSend(grpc::CallId call);
  void Cancel(grpc::CallId call);

  // Call makes a unary call: `request` (one serialized message) to `method`,
  // the one response message (or the call's status) to `done`, which runs on
  // the loop, never inside Call, exactly once: with DeadlineExceeded when
  // `deadline` passes first (also while waiting for a connection),
  // Unavailable when the connection breaks under the call, Cancelled when
  // the connection is destroyed.
  void Call(absl::string_view method, std::string request, absl::Time deadline, CallDone done);

  // Reconnect drops the current connection (e.g. the stream owner saw
  // something it cannot go on with) and connects again after the backoff.
  void Reconnect(const absl::Status& why);
  // NextBackoff / ResetBackoff: the shared backoff (see the file comment).
  absl::Duration NextBackoff() { return backoff_.Next(); }
  void ResetBackoff() { backoff_.Reset(); }

  const ConnectionStats& stats() const { return stats_; }
  // last_error: why the last attempt or connection failed (OK if none).
  const absl::Status& last_error() const { return last_error_; }
  runtime::EventLoop* loop() const { return loop_; }

 private:
  struct Unary {
    std::string method;
    std::string request;
    absl::Time deadline;
    CallDone done;
    grpc::CallId call = 0;  // 0 while waiting for a connection
    std::string response;
    bool got_response = false;
  };

  ControlPlaneConnection(runtime::EventLoop* loop, ConnectionOptions options);
  void Connect();
  void OnIo(uint32_t events);
  void OnConnectDone();
  void Fail(const absl::Status& why);
  void CloseSocket();
  void Flush();
  // Settle runs after the channel took input or time: it hands out events,
  // ends a broken or drained connection, and writes what is pending.
  void Settle();
  void Dispatch();
  void ArmTimer();
  void OnTimer();
  void RefreshMetadata();
  void StartUnary(uint64_t id);
  void FinishUnary(uint64_t id, absl::StatusOr<std::string> result);

  runtime::EventLoop* loop_;
  ConnectionOptions options_;
  std::string host_;
  std::string port_;
  ssl_ctx_st* ssl_ctx_ = nullptr;
  int fd_ = -1;
  bool connecting_ = false;
  bool started_ = false;
  runtime::IoWatch watch_;
  runtime::Timer timer_;      // the channel's deadlines and the connect timeout
  runtime::Timer reconnect_;  // the backoff wait
  runtime::Timer unary_deadlines_;
  absl::Time connect_deadline_ = absl::InfiniteFuture();
  std::unique_ptr<grpc::Channel> channel_;
  Backoff backoff_;
  Handlers handlers_;
  std::map<uint64_t, Unary> unary_;
  std::map<grpc::CallId, uint64_t> unary_calls_;  // started unary calls
  bool failing_ = false;
  uint64_t next_unary_ = 1;
  std::string token_;
  struct timespec token_mtime_ {};
  off_t token_size_ = -1;
  bool token_read_ = false;
  ConnectionStats stats_;
  absl::Status last_error_;
};

}  // namespace ambient::xds

#endif  // AMBIENT_XDS_CONTROL_PLANE_CONNECTION_H_
