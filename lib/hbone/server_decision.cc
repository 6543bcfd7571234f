#include "ambient/hbone/server_decision.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ambient::hbone {

ServerDecision::ServerDecision(std::vector<identity::SpiffeId> allow, PendingLimits limits)
    : allow_(std::move(allow)), limits_(limits) {}

StreamAnswer ServerDecision::Refuse(StreamAnswer::Stage stage, int http_status, absl::Status why,
                                    const char* flags, const RecordBuilder& record) {
  StreamAnswer a;
  a.stage = stage;
  a.http_status = http_status;
  a.reason = why;
  a.record = record.Refused(std::move(why), flags);
  return a;
}

StreamAnswer ServerDecision::Decide(uint64_t conn, const identity::SpiffeId& peer,
                                    const HostChecks& host,
                                    const std::function<RecordBuilder()>& record) {
  using Stage = StreamAnswer::Stage;
  if (!allow_.empty() && std::find(allow_.begin(), allow_.end(), peer) == allow_.end()) {
    return Refuse(Stage::kIdentity, 401,
                  absl::PermissionDeniedError(absl::StrCat("identity ", peer.str(), " is not allowed")),
                  "DENY", record);
  }
  if (host.resolve) {
    if (absl::Status st = host.resolve(); !st.ok()) {
      return Refuse(Stage::kResolve, 503, std::move(st), "CONNECT", record);
    }
  }
  if (host.authorize) {
    if (absl::Status st = host.authorize(); !st.ok()) {
      return Refuse(Stage::kAuthorize, 401, std::move(st), "DENY", record);
    }
  }
  if (host.route) {
    if (absl::Status st = host.route(); !st.ok()) {
      return Refuse(Stage::kRoute, 503, std::move(st), "CONNECT", record);
    }
  }
  const char* over = nullptr;
  size_t limit = 0;
  if (limits_.per_connection != 0 && pending_for_connection(conn) >= limits_.per_connection) {
    over = "connection";
    limit = limits_.per_connection;
  } else if (limits_.per_identity != 0 && pending_for_identity(peer) >= limits_.per_identity) {
    over = "identity";
    limit = limits_.per_identity;
  }
  if (over != nullptr) {
    return Refuse(Stage::kLimit, 503,
                  absl::ResourceExhaustedError(absl::StrCat(
                      "too many upstream connects pending for this ", over, " (limit ", limit,
                      ")")),
                  "CONNECT", record);
  }
  ++by_conn_[conn];
  ++by_id_[peer];
  ++pending_;
  return StreamAnswer{};
}

StreamAnswer ServerDecision::UpstreamFailed(absl::Status why, const RecordBuilder& record) {
  return Refuse(StreamAnswer::Stage::kUpstream, 503, std::move(why), "CONNECT", record);
}

void ServerDecision::Release(uint64_t conn, const identity::SpiffeId& peer) {
  if (pending_ > 0) --pending_;
  if (auto it = by_conn_.find(conn); it != by_conn_.end() && --it->second == 0) {
    by_conn_.erase(it);
  }
  if (auto it = by_id_.find(peer); it != by_id_.end() && --it->second == 0) by_id_.erase(it);
}

size_t ServerDecision::pending_for_connection(uint64_t conn) const {
  auto it = by_conn_.find(conn);
  return it == by_conn_.end() ? 0 : it->second;
}

size_t ServerDecision::pending_for_identity(const identity::SpiffeId& peer) const {
  auto it = by_id_.find(peer);
  return it == by_id_.end() ? 0 : it->second;
}

}  // namespace ambient::hbone
