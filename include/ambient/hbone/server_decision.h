// ambient/hbone/server_decision.h: what an HBONE server answers to one
// CONNECT, sans I/O.
//
// A server that received a CONNECT (a kStreamRequest event of
// ambient/hbone/connection.h) decides, in this order:
//   1. the peer identity is on the allow list (if any)      else 401, DENY
//   2. the :authority resolves to an upstream the host can reach
//                                                           else 503, CONNECT
//   3. the host's authorization (e.g. authz::PolicyStore) allows it
//                                                           else 401, DENY
//   4. the host's route choice succeeds                     else 503, CONNECT
//   5. a pending-dial slot is free for this connection and for this peer
//      identity                                             else 503, CONNECT
// and otherwise accepts: the host connects the upstream, then answers 200
// (Connection::AcceptStream) or, when that connect fails, 503 (UpstreamFailed).
// ServerDecision keeps the pending-dial counts of step 5; the host reports
// each accepted stream's connect as over with Release.
//
// Steps 2-4 are the host's: it passes callables, so this layer depends on no
// address type, policy engine or socket. A rejected answer carries the
// access record to log (built from the host's RecordBuilder, ambient/hbone/
// record.h).
//
// Embedding: on each kStreamRequest, build the RecordBuilder, call Decide;
// if !accepted(), RejectStream(answer.http_status) and log answer.record;
// else start the upstream connect and call Release(conn, peer) when it ends
// (connected, failed or cancelled). Call ConnectionClosed when a connection
// goes. lib/runtime's HboneServer is such a host.
//
// Identities are identity::SpiffeId values: the host parses the peer's
// certificate SAN (or takes the one its verifier established) and its allow
// list once, at its edge; this file renders one only into the refusal text.
//
// Threads: not synchronised; one thread at a time (e.g. the host's loop).
#ifndef AMBIENT_HBONE_SERVER_DECISION_H_
#define AMBIENT_HBONE_SERVER_DECISION_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "ambient/hbone/record.h"
#include "ambient/hbone/telemetry.h"
#include "ambient/identity/spiffe_id.h"

namespace ambient::hbone {

// StreamAnswer is the decision on one CONNECT.
struct StreamAnswer {
  enum class Stage { kAccepted, kIdentity, kResolve, kAuthorize, kRoute, kLimit, kUpstream };
  Stage stage = Stage::kAccepted;  // which step refused it
  int http_status = 200;           // 200 = accepted: connect the upstream
  absl::Status reason;             // OK when accepted
  ConnectionRecord record;         // when refused: the record to log and count

  bool accepted() const { return stage == Stage::kAccepted; }
};

// PendingLimits caps upstream connects in flight (0 = no cap).
struct PendingLimits {
  size_t per_connection = 0;
  size_t per_identity = 0;
};

class ServerDecision {
 public:
  // The host's steps 2-4: each returns OK to go on, or the reason to refuse
  // (it becomes the record's error as is). A null callable is a step that
  // always passes.
  struct HostChecks {
    std::function<absl::Status()> resolve;
    std::function<absl::Status()> authorize;
    std::function<absl::Status()> route;
  };

  // `allow`: the SPIFFE IDs allowed to open streams; empty allows any peer.
  explicit ServerDecision(std::vector<identity::SpiffeId> allow = {}, PendingLimits limits = {});

  void SetLimits(PendingLimits limits) { limits_ = limits; }

  // Decide answers a CONNECT from `peer` (the TLS peer's SPIFFE ID) on connection `conn`
  // (any id the host chooses, unique among its open connections). When
  // accepted, one pending dial of (conn, peer) is counted until Release.
  // `record` is called only to refuse (so an accepted stream costs no record):
  // it returns what the host knows of the stream.
  StreamAnswer Decide(uint64_t conn, const identity::SpiffeId& peer, const HostChecks& host,
                      const std::function<RecordBuilder()>& record);

  // UpstreamFailed is the answer for an accepted stream whose upstream
  // connect failed with `why` (503, CONNECT).
  static StreamAnswer UpstreamFailed(absl::Status why, const RecordBuilder& record);

  // Release ends one pending dial of (conn, peer).
  void Release(uint64_t conn, const identity::SpiffeId& peer);
  // ConnectionClosed forgets the per-connection count of `conn`.
  void ConnectionClosed(uint64_t conn) { by_conn_.erase(conn); }

  // pending is the number of pending dials in all (what Release balances).
  size_t pending() const { return pending_; }
  size_t pending_for_connection(uint64_t conn) const;
  size_t pending_for_identity(const identity::SpiffeId& peer) const;

 private:
  static StreamAnswer Refuse(StreamAnswer::Stage stage, int http_status, absl::Status why,
                             const char* flags, const RecordBuilder& record);
  static StreamAnswer Refuse(StreamAnswer::Stage stage, int http_status, absl::Status why,
                             const char* flags, const std::function<RecordBuilder()>& record) {
    return Refuse(stage, http_status, std::move(why), flags, record());
  }

  std::vector<identity::SpiffeId> allow_;
  PendingLimits limits_;
  size_t pending_ = 0;
  std::unordered_map<uint64_t, size_t> by_conn_;
  std::map<identity::SpiffeId, size_t> by_id_;
};

}  // namespace ambient::hbone

#endif  // AMBIENT_HBONE_SERVER_DECISION_H_
