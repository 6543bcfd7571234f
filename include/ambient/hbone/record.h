// ambient/hbone/record.h: building the access record of one proxied
// connection (ambient/hbone/telemetry.h) from what a host knows.
//
// A host (the epoll runtime, Envoy, a Go or Rust loop) knows the pieces of a
// record at different moments: addresses and identities when the stream or
// socket arrives, the peer's workload metadata from a `baggage` header, the
// byte counts and the end when its relay is over. RecordBuilder holds the
// known part and turns it into the record for each outcome, so every host
// logs the same fields the same way:
//
//   hbone::RecordBuilder b = hbone::RecordBuilder::ForConnect(
//       hbone::Direction::kInbound, request);             // :authority, baggage
//   b.Source(peer_addr, peer_identity).Destination(listener, my_identity, me);
//   b.Started(now);
//   metrics.ConnectionOpened(b.Opened());
//   ...
//   metrics.ConnectionClosed(b.Closed({sent, recv}, relay_status, ended));
//
// Times are given by the host (absl::Time from its own clock); nothing here
// reads a clock, touches a socket or keeps a thread. A RecordBuilder is a
// value: copy it to branch (e.g. one per stream of a connection).
//
// Threads: a RecordBuilder is not synchronised; distinct builders may be used
// from different threads.
#ifndef AMBIENT_HBONE_RECORD_H_
#define AMBIENT_HBONE_RECORD_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ambient/hbone/connection.h"
#include "ambient/hbone/telemetry.h"
#include "ambient/identity/spiffe_id.h"

namespace ambient::hbone {

// Transfer is what a relay moved: bytes_sent toward the remote side of the
// proxied connection and bytes_recv from it (telemetry.h's log convention).
struct Transfer {
  uint64_t bytes_sent = 0;
  uint64_t bytes_recv = 0;
};

class RecordBuilder {
 public:
  // A builder for a connection in `direction` with nothing known yet.
  explicit RecordBuilder(Direction direction);

  // ForConnect starts from an HBONE CONNECT request: dst_hbone_addr is its
  // :authority; for kInbound the client's workload metadata is merged from
  // every well-formed `baggage` header (malformed ones read as unknown).
  static RecordBuilder ForConnect(Direction direction, const ConnectRequest& request);

  // Source sets the client of the proxied connection: its address, SPIFFE
  // ID (nullopt = unknown) and workload (fields left empty stay unknown).
  // The record holds the ID as the text it prints.
  RecordBuilder& Source(std::string addr,
                        const std::optional<identity::SpiffeId>& identity = std::nullopt,
                        const WorkloadInfo& workload = {});
  // Destination sets the next hop (outbound) or our listener (inbound), the
  // server's SPIFFE ID and its workload. A nullopt `identity` keeps the one
  // already set; an empty `workload` keeps the one already set.
  RecordBuilder& Destination(std::string addr,
                             const std::optional<identity::SpiffeId>& identity = std::nullopt,
                             const WorkloadInfo& workload = {});
  // HboneAddress sets the CONNECT :authority (dst.hbone_addr).
  RecordBuilder& HboneAddress(std::string authority);
  // Service sets the destination service host name ("" = unknown).
  RecordBuilder& Service(std::string hostname);
  // PeerIdentity sets the SPIFFE ID of the TLS peer: the source for
  // kInbound, the destination for kOutbound.
  RecordBuilder& PeerIdentity(const identity::SpiffeId& identity);
  // ResponseBaggage takes the server's workload from the `baggage` header of
  // its CONNECT response, only when the destination workload is still
  // unknown (the host's directory wins); malformed baggage is ignored.
  RecordBuilder& ResponseBaggage(absl::string_view baggage);
  // Edit lets a host adjust the known part (e.g. a directory lookup hook).
  RecordBuilder& Edit(const std::function<void(ConnectionRecord*)>& edit);
  // Started records when the connection began (for durations).
  RecordBuilder& Started(absl::Time started);

  absl::Time started() const { return started_; }
  // record is the known part as it stands (what Opened returns).
  const ConnectionRecord& record() const { return base_; }

  // Opened is the record to count a connection that starts (no error, no
  // bytes, no duration).
  ConnectionRecord Opened() const { return base_; }

  // Refused is the record of a connection answered with an error before any
  // relay: `error`, `response_flags` = flags and no duration (the refusal is
  // immediate from the connection's point of view).
  ConnectionRecord Refused(absl::Status error, absl::string_view flags) const;

  // Failed is Refused with the duration from Started() to `now`: a
  // connection that waited (an upstream connect) and then failed.
  ConnectionRecord Failed(absl::Status error, absl::string_view flags, absl::Time now) const;

  // Closed is the record of a relayed connection that is over: its bytes,
  // the duration from Started() to `ended`, `status` as error and, when
  // `status` is not OK, `error_flags` as response_flags.
  ConnectionRecord Closed(const Transfer& transfer, absl::Status status, absl::Time ended,
                          absl::string_view error_flags = "CONNECT") const;

  // DialFailureFlags is the response_flags for an outbound HBONE connect
  // that failed with `status`: IDENTITY_ERROR for a peer with the wrong
  // identity (PermissionDenied), TLS_FAILURE for a failed handshake
  // (Unauthenticated), CONNECT otherwise.
  static const char* DialFailureFlags(const absl::Status& status);

 private:
  ConnectionRecord base_;
  absl::Time started_;
};

}  // namespace ambient::hbone

#endif  // AMBIENT_HBONE_RECORD_H_
