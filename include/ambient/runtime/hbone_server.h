// ambient/runtime/hbone_server.h: HBONE server on an EventLoop.
//
// Object model. Each object lives on one EventLoop and must be used and
// destroyed on that loop's thread. Destroying an object aborts its
// connections; a client also cancels its TCP connects in flight (socket
// closed at once) and fails the tunnels waiting for them with Cancelled. TLS comes from an SSL_CTX
// the caller prepared (see ambient/hbone/tls_context.h); the object takes a reference to it.
//
//  - HboneServer accepts HBONE connections, authorizes each CONNECT (the
//    peer identity must be in `allow`, when given), connects to the
//    :authority (numeric ip:port; 10 s timeout), answers 200 only after that
//    succeeded (401 when not authorized, 503 when the upstream cannot be
//    reached, 400 for malformed requests) and relays bytes. A CONNECT reset
//    by the client (or whose connection goes) while its upstream connect is
//    in flight cancels that connect at once (socket closed) and produces an
//    access log line (error Cancelled, flags CONNECT). ServerOptions::route
//    may pick another TCP upstream or carry the stream on over HBONE
//    (Upstream::Hbone: a waypoint's second leg). The server caps its
//    connections, handshakes and pending connects (ServerOptions), and
//    rests its listener for 100 ms when accept() runs out of descriptors
//    (one WARN line per second, with the count).
//
// Every finished tunnel produces an access log line (component "access",
// INFO, or ERROR with error=) on `log` and updates `metrics` when given.
// Workload metadata travels as ztunnel's `baggage` header
// (ambient/hbone/baggage.h): the client sends TunnelTarget::source_workload
// on CONNECT; the server records the request's baggage as the record's
// source workload and sends ServerOptions::workload on its 200; the client
// records the 200's baggage as the destination workload when
// TunnelTarget::destination_workload is empty.
#ifndef AMBIENT_RUNTIME_HBONE_SERVER_H_
#define AMBIENT_RUNTIME_HBONE_SERVER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ambient/base/log.h"
#include "ambient/hbone/baggage.h"
#include "ambient/hbone/connection.h"
#include "ambient/hbone/telemetry.h"
#include "ambient/identity/spiffe_id.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/hbone_client.h"
#include "ambient/runtime/socket.h"

namespace ambient::runtime {

// Upstream is where an HboneServer carries one accepted CONNECT on
// (ServerOptions::route's answer): a plain TCP address (the default; a
// SocketAddress converts implicitly), or, when `client` is set, one more
// HBONE hop: a stream through `client` to `hbone` (e.g. a waypoint's leg to
// the chosen endpoint's 15008 with :authority endpoint_ip:target_port and
// the endpoint's identity expected; the client's ssl_ctx carries our own
// SVID). For an HBONE hop the server answers 200 downstream only once the
// upstream CONNECT got its 200; an upstream refusal or dial failure is a 503
// downstream (access log error says why, flags CONNECT); a downstream reset
// or close cancels the upstream stream, an upstream reset resets the
// downstream stream. Both legs produce their access log line: the server's
// (inbound) on ServerOptions::log, the client's (outbound) on its own.
// `client` is not owned and must outlive the server.
struct Upstream {
  Upstream() = default;
  Upstream(const SocketAddress& address) : tcp(address) {}  // NOLINT: implicit on purpose
  static Upstream Hbone(HboneClient* client, TunnelTarget target) {
    Upstream u;
    u.client = client;
    u.hbone = std::move(target);
    return u;
  }
  SocketAddress tcp;              // plain TCP (when client is null)
  HboneClient* client = nullptr;  // HBONE hop through this client
  TunnelTarget hbone;             // ... to this target
};

// InboundStream is what ServerOptions::authorize decides on: one CONNECT.
struct InboundStream {
  identity::SpiffeId peer_identity;  // the client's verified SPIFFE ID
  SocketAddress peer;                // the client's TCP address
  SocketAddress upstream;            // the parsed :authority
  std::string authority;
};

// ServerLimits keep an HboneServer in service under floods (0 = no limit).
struct ServerLimits {
  // Live connections at most; at the cap the listener rests and new
  // connections wait in the kernel's backlog until one closes.
  size_t max_connections = 4096;
  // Connections still in their TLS handshake at most; at the cap the
  // listener rests until one finishes.
  size_t max_handshakes = 256;
  // A connection that has sent no byte this long after it was accepted is
  // closed (settings.handshake_timeout still bounds the whole handshake);
  // zero: no such deadline.
  absl::Duration silent_timeout = absl::Seconds(3);
  // CONNECTs whose upstream connect is still in flight, at most per
  // connection and per client identity; more are answered 503 (access log
  // error "too many upstream connects pending ...", flags CONNECT).
  size_t max_pending_dials_per_connection = 100;
  size_t max_pending_dials_per_identity = 1000;
};

struct ServerOptions {
  std::string listen = "127.0.0.1:15008";
  // When >= 0: serve this listening TCP socket (e.g. one made inside a pod's
  // netns) instead of opening `listen`; the server takes it over and closes
  // it when destroyed (and when New fails).
  int listen_fd = -1;
  // Optional per-stream check after `allow`: a non-OK status rejects the
  // CONNECT with 401 (access log error = its message, flags DENY).
  std::function<absl::Status(const InboundStream&)> authorize;
  // Optional per-stream choice of the upstream, asked after `authorize`:
  // the plain-TCP address to connect to instead of the :authority (e.g. a
  // waypoint's pick of an endpoint of the service VIP:port in :authority),
  // or an HBONE hop (Upstream::Hbone). An error refuses the CONNECT with 503
  // (access log error = its message, flags CONNECT) and connects nothing.
  // Runs on the loop. The per-connection and per-identity caps on pending
  // upstream connects count HBONE hops waiting for their 200 too.
  std::function<absl::StatusOr<Upstream>(const InboundStream&)> route;
  // Optional maker of the upstream socket (unconnected) for `upstream` on
  // behalf of `client`, e.g. inside the destination pod's netns, marked,
  // bound to the client's IP; it returns an fd the server then owns.
  std::function<absl::StatusOr<int>(const SocketAddress& upstream, const SocketAddress& client)>
      upstream_socket;
  ssl_ctx_st* ssl_ctx = nullptr;
  // Client SPIFFE IDs allowed to open tunnels; empty = every client that
  // passed TLS verification (a list given as text: identity::ParseSpiffeIdList).
  std::vector<identity::SpiffeId> allow;
  hbone::Settings settings;
  absl::Duration connect_timeout = absl::Seconds(10);
  LogSink log;
  std::shared_ptr<hbone::Metrics> metrics;
  // Our own workload (optional): sent as `baggage` on every 200 (when not
  // empty) and recorded as the destination workload of inbound records.
  hbone::WorkloadInfo workload;
  // Our SPIFFE ID (optional), recorded as dst.identity of inbound records.
  std::optional<identity::SpiffeId> identity;
  // Optional: completes each inbound record on the loop before it is
  // counted or logged (e.g. the client's workload from a directory). The
  // record already has the addresses, identities and the source workload
  // read from the request's baggage (malformed baggage reads as empty).
  std::function<void(hbone::ConnectionRecord*)> annotate;

  ServerLimits limits;
};

// ServerStats counts what the server refused or cut short (since New).
struct ServerStats {
  uint64_t accepted = 0;                // connections accepted
  uint64_t accept_resource_errors = 0;  // accept() failed with EMFILE/ENFILE/ENOBUFS/ENOMEM
  uint64_t silent_closed = 0;           // connections closed by silent_timeout
  uint64_t refused_streams = 0;         // CONNECTs refused by a pending-dial cap
  uint64_t cancelled_dials = 0;         // upstream connects cancelled with their stream
  uint64_t policy_closed = 0;           // carried streams ended by Recheck
  size_t pending_dials = 0;             // upstream connects in flight now
};

class HboneServer {
 public:
  // New listens on `options.listen`. Errors: InvalidArgument (address,
  // missing ssl_ctx), AlreadyExists (address in use), PermissionDenied.
  static absl::StatusOr<std::unique_ptr<HboneServer>> New(EventLoop* loop, ServerOptions options);
  virtual ~HboneServer() = default;
  // The bound address (with the real port when listening on port 0).
  virtual SocketAddress address() const = 0;
  virtual size_t connections() const = 0;
  virtual ServerStats stats() const = 0;
  // SetLimits replaces ServerOptions::limits: the caps apply at once (a
  // lower connection cap closes nothing, it stops accepting until below
  // it), silent_timeout to connections accepted from now on.
  virtual void SetLimits(const ServerLimits& limits) = 0;
  // Drain stops accepting and sends GOAWAY on every connection.
  virtual void Drain() = 0;
  // SetWorkload replaces ServerOptions::workload for CONNECTs answered from
  // now on (the 200's baggage and the inbound records' destination).
  virtual void SetWorkload(const hbone::WorkloadInfo& workload) = 0;
  // Recheck runs ServerOptions::authorize again for every stream being
  // carried (ztunnel's policy watcher: call it after the policies changed)
  // and ends each one now denied: RST_STREAM(CONNECT_ERROR) to the client,
  // the upstream socket closed, and its access record with the error
  // "connection closed due to policy change: <reason>". Returns how many it
  // ended. Nothing happens without an authorize hook.
  virtual size_t Recheck() = 0;
};

}  // namespace ambient::runtime

#endif  // AMBIENT_RUNTIME_HBONE_SERVER_H_
