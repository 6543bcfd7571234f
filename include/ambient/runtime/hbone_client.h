// ambient/runtime/hbone_client.h: pooled HBONE client on an EventLoop.
//
// Object model. Each object lives on one EventLoop and must be used and
// destroyed on that loop's thread. Destroying an object aborts its
// connections; a client also cancels its TCP connects in flight (socket
// closed at once) and fails the tunnels waiting for them with Cancelled. TLS comes from an SSL_CTX
// the caller prepared (see ambient/hbone/tls_context.h); the object takes a reference to it.
//
//  - HboneClient opens streams on pooled connections; it hosts an
//    hbone::Pool (ambient/hbone/pool.h). Pool key: (our identity, expected
//    server identities, server address, source IP); at most 100 streams per
//    connection and never above the server's limit; one dial in flight per
//    key (other requests wait for it); connections idle for
//    ClientOptions::idle_timeout (5 minutes) are closed; broken or GOAWAY'd
//    connections are dropped from the pool.
//
// Every finished tunnel produces an access log line (component "access",
// INFO, or ERROR with error=) on `log` and updates `metrics` when given.
// Workload metadata travels as ztunnel's `baggage` header
// (ambient/hbone/baggage.h): the client sends TunnelTarget::source_workload
// on CONNECT; the server records the request's baggage as the record's
// source workload and sends ServerOptions::workload on its 200; the client
// records the 200's baggage as the destination workload when
// TunnelTarget::destination_workload is empty.
#ifndef AMBIENT_RUNTIME_HBONE_CLIENT_H_
#define AMBIENT_RUNTIME_HBONE_CLIENT_H_

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
#include "ambient/runtime/socket.h"

namespace ambient::runtime {

struct TunnelTarget {
  SocketAddress via;      // the HBONE server
  std::string authority;  // CONNECT :authority
  std::vector<identity::SpiffeId> expected_identities;
  SocketAddress source_addr;                 // the downstream client, if any (else empty)
  std::vector<hbone::Header> extra_headers;  // e.g. baggage
  // Our workload: recorded as the source workload and, when not empty, sent
  // as the CONNECT's `baggage` (then a `baggage` in extra_headers is not
  // sent).
  hbone::WorkloadInfo source_workload;
  // What the host knows of the destination (e.g. from its directory):
  // recorded as the destination workload and dst.service. When
  // destination_workload is empty, the record's destination workload is read
  // from the `baggage` of the server's 200 instead (ztunnel's response
  // baggage; malformed baggage reads as unknown). A non-empty
  // destination_workload wins as a whole (no field-by-field mix): it comes
  // from the host's control plane, is consistent with destination_service,
  // and is what the record was opened with (metrics' opened counter is
  // labelled before the 200 arrives), while the baggage is only what the
  // server says about itself.
  hbone::WorkloadInfo destination_workload;
  std::string destination_service;
};

struct ClientOptions {
  ssl_ctx_st* ssl_ctx = nullptr;
  // Trust bundles for per-connection verification of expected identities
  // (optional; see hbone::ConnectionOptions::bundles).
  std::shared_ptr<identity::TrustBundleSource> bundles;
  // Our SPIFFE ID, part of the pool key (informational otherwise).
  std::optional<identity::SpiffeId> identity;
  hbone::Settings settings;
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration idle_timeout = absl::Minutes(5);
  // Optional maker of the (unconnected) socket for a connection to an HBONE
  // server at `via`, e.g. inside the source pod's netns with its mark; it
  // returns an fd the client then owns.
  std::function<absl::StatusOr<int>(const SocketAddress& via)> dial_socket;
  LogSink log;
  std::shared_ptr<hbone::Metrics> metrics;
};

struct TunnelResult {
  absl::Status status;  // OK: the tunnel ran and closed cleanly
  int http_status = 0;  // the CONNECT response (0 if none)
  std::optional<identity::SpiffeId> peer_identity;  // the server's, once known
  uint64_t bytes_sent = 0;  // fd -> tunnel
  uint64_t bytes_recv = 0;  // tunnel -> fd
};

struct PoolStats {
  size_t connections = 0;  // live HBONE connections
  size_t dials = 0;        // connections ever dialed
  size_t streams = 0;      // streams ever opened
};

class HboneClient {
 public:
  // New makes a client. Errors: InvalidArgument (missing ssl_ctx).
  static absl::StatusOr<std::unique_ptr<HboneClient>> New(EventLoop* loop, ClientOptions options);
  virtual ~HboneClient() = default;
  // Tunnel relays `in_fd`/`out_fd` (the same fd for a socket) through a new
  // stream to `target`; `done` runs once on the loop when it is over. With
  // `owns_fds` the fds are closed then. The CONNECT carries `forwarded`
  // (for=source_addr), a fresh `traceparent` and `extra_headers`.
  virtual void Tunnel(const TunnelTarget& target, int in_fd, int out_fd, bool owns_fds,
                      std::function<void(const TunnelResult&)> done) = 0;
  // TunnelWith is Tunnel with `established`: it runs once on the loop when
  // the CONNECT is answered 200 (TunnelResult with http_status and
  // peer_identity, no bytes yet), before any response byte is written to
  // `out_fd`; it does not run when the tunnel fails before that (then
  // `done` reports why: dial or TLS failure, or the server's refusal with
  // http_status). It returns a canceller, to be called on the loop at any
  // time (also after `done`, or after the client is gone: then it does
  // nothing): it ends the tunnel at once (the stream is reset, or the wait
  // for a pooled connection abandoned; owned fds are closed) and `done`
  // runs with Cancelled (at once while waiting for a connection, else when
  // the reset stream closes, later on the loop).
  virtual std::function<void()> TunnelWith(const TunnelTarget& target, int in_fd, int out_fd,
                                           bool owns_fds,
                                           std::function<void(const TunnelResult&)> established,
                                           std::function<void(const TunnelResult&)> done) = 0;
  virtual PoolStats stats() const = 0;
};

}  // namespace ambient::runtime

#endif  // AMBIENT_RUNTIME_HBONE_CLIENT_H_
