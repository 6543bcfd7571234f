// ambient/xds/ads_client.h: ztunnel's xDS client, running on an EventLoop.
//
// Object model. An AdsClient keeps one delta ADS stream
// (DeltaAdsSession, ambient/xds/delta_ads.h) open to istiod over a
// ControlPlaneConnection (ambient/xds/control_plane_connection.h): each time
// the connection is up it opens the stream and sends the session's initial
// requests (node, wildcard subscription, and the versions held from earlier
// streams), hands every response to the session (whose TypeHandlers apply
// it) and sends back the ACK or NACK. Whenever the stream ends (grpc-status,
// a reset, a response that is not a DeltaDiscoveryResponse, one over
// max_receive_message, a broken connection) it is opened again after the
// connection's backoff (10 ms doubling to 15 s, jittered); the backoff is
// reset once a stream got a response through.
//
// Readiness is ztunnel's: ready() becomes true the first time every
// subscribed type has been ACKed, and stays true (a reconnect does not make
// the proxy unready); the ready callback runs once, then.
//
// The same connection carries unary calls (connection()->Call, e.g. the
// Istio CA's CreateCertificate when the CA is istiod itself).
//
// Threads: the loop's thread only (including construction and destruction).
#ifndef AMBIENT_XDS_ADS_CLIENT_H_
#define AMBIENT_XDS_ADS_CLIENT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/xds/control_plane_connection.h"
#include "ambient/xds/delta_ads.h"

namespace ambient::xds {

struct AdsClientOptions {
  ConnectionOptions connection;
  NodeIdentity node;
  // Subscribed in this order; the handlers are borrowed and must outlive
  // the client.
  std::vector<std::pair<std::string, TypeHandler*>> types;
};

struct AdsClientStats {
  uint64_t connects = 0;    // connections established
  uint64_t streams = 0;     // ADS streams opened
  uint64_t reconnects = 0;  // streams opened after the first
  uint64_t stream_failures = 0;
  uint64_t responses = 0;
  uint64_t acks = 0;
  uint64_t nacks = 0;
  // Why streams ended, as ztunnel's istio_xds_connection_terminations_total
  // counts them: ConnectionError (a connect attempt failed or the connection
  // broke), Error (a gRPC error, or a response we could not take),
  // Reconnect (istiod ended it as routine: Unknown, Cancelled,
  // DeadlineExceeded, or Unavailable after a GOAWAY) and Complete (OK).
  uint64_t terminations_connection_error = 0;
  uint64_t terminations_error = 0;
  uint64_t terminations_reconnect = 0;
  uint64_t terminations_complete = 0;
  // Responses and resource bytes per type URL (DeltaAdsSession's).
  std::map<std::string, TypeStats> by_type;
};

// XdsPrometheus renders `s` as ztunnel's xDS metrics in Prometheus text:
// istio_xds_connection_terminations_total{reason=...},
// istio_xds_message_total{url=...}, istio_xds_message_bytes_total{url=...}
// and istio_xds_up (1 while the stream is open).
std::string XdsPrometheus(const AdsClientStats& s, bool up);

class AdsClient {
 public:
  // New makes the client and its connection (nothing is sent before
  // Start). Errors: InvalidArgument (no types, a null handler), those of
  // ControlPlaneConnection::New. `loop` must outlive the client.
  static absl::StatusOr<std::unique_ptr<AdsClient>> New(runtime::EventLoop* loop,
                                                        AdsClientOptions options);
  ~AdsClient();
  AdsClient(const AdsClient&) = delete;
  AdsClient& operator=(const AdsClient&) = delete;

  // Start connects and keeps the stream open until the client is destroyed.
  void Start();
  // SetReadyCallback: `ready` runs once, on the loop, when ready() becomes
  // true (at once, from a later iteration, if it already is).
  void SetReadyCallback(std::function<void()> ready);

  bool ready() const { return ready_; }
  // streaming: the ADS stream is open now.
  bool streaming() const { return call_ != 0; }
  AdsClientStats stats() const;
  // last_error: why the last stream or connection ended (OK if none yet).
  absl::Status last_error() const { return last_error_; }
  // StatusText is one line for an admin page: address, state, readiness,
  // counters and the last error.
  std::string StatusText() const;

  ControlPlaneConnection* connection() { return connection_.get(); }
  const DeltaAdsSession& session() const { return *session_; }

 private:
  AdsClient(runtime::EventLoop* loop, AdsClientOptions options);
  void OpenStream();
  void OnEvent(const grpc::CallEvent& e);
  void StreamEnded(const absl::Status& why);

  runtime::EventLoop* loop_;
  AdsClientOptions options_;
  std::unique_ptr<DeltaAdsSession> session_;
  std::unique_ptr<ControlPlaneConnection> connection_;
  runtime::Timer reopen_;
  grpc::CallId call_ = 0;
  bool got_response_ = false;
  bool ready_ = false;
  std::function<void()> on_ready_;
  AdsClientStats stats_;
  absl::Status last_error_;
};

}  // namespace ambient::xds

#endif  // AMBIENT_XDS_ADS_CLIENT_H_
