#include "ambient/hbone/record.h"

#include <utility>

#include "ambient/hbone/baggage.h"

namespace ambient::hbone {

RecordBuilder::RecordBuilder(Direction direction) { base_.direction = direction; }

RecordBuilder RecordBuilder::ForConnect(Direction direction, const ConnectRequest& request) {
  RecordBuilder b(direction);
  b.base_.dst_hbone_addr = request.authority;
  if (direction == Direction::kInbound) {
    for (const Header& h : request.headers) {
      if (h.name != "baggage") continue;
      absl::StatusOr<WorkloadInfo> w = ParseBaggage(h.value);
      if (w.ok()) b.base_.src.Merge(*w);
    }
  }
  return b;
}

RecordBuilder& RecordBuilder::Source(std::string addr,
                                     const std::optional<identity::SpiffeId>& identity,
                                     const WorkloadInfo& workload) {
  base_.src_addr = std::move(addr);
  if (identity) base_.src_identity = identity->str();
  if (!workload.empty()) base_.src = workload;
  return *this;
}

RecordBuilder& RecordBuilder::Destination(std::string addr,
                                          const std::optional<identity::SpiffeId>& identity,
                                          const WorkloadInfo& workload) {
  base_.dst_addr = std::move(addr);
  if (identity) base_.dst_identity = identity->str();
  if (!workload.empty()) base_.dst = workload;
  return *this;
}

RecordBuilder& RecordBuilder::HboneAddress(std::string authority) {
  base_.dst_hbone_addr = std::move(authority);
  return *this;
}

RecordBuilder& RecordBuilder::Service(std::string hostname) {
  base_.dst_service = std::move(hostname);
  return *this;
}

RecordBuilder& RecordBuilder::PeerIdentity(const identity::SpiffeId& identity) {
  (base_.direction == Direction::kInbound ? base_.src_identity : base_.dst_identity) =
      identity.str();
  return *this;
}

RecordBuilder& RecordBuilder::ResponseBaggage(absl::string_view baggage) {
  if (!base_.dst.empty() || baggage.empty()) return *this;
  absl::StatusOr<WorkloadInfo> w = ParseBaggage(baggage);
  if (w.ok()) base_.dst = *std::move(w);
  return *this;
}

RecordBuilder& RecordBuilder::Edit(const std::function<void(ConnectionRecord*)>& edit) {
  if (edit) edit(&base_);
  return *this;
}

RecordBuilder& RecordBuilder::Started(absl::Time started) {
  started_ = started;
  return *this;
}

ConnectionRecord RecordBuilder::Refused(absl::Status error, absl::string_view flags) const {
  ConnectionRecord r = base_;
  r.error = std::move(error);
  r.response_flags = std::string(flags);
  return r;
}

ConnectionRecord RecordBuilder::Failed(absl::Status error, absl::string_view flags,
                                       absl::Time now) const {
  ConnectionRecord r = Refused(std::move(error), flags);
  r.duration = now - started_;
  return r;
}

ConnectionRecord RecordBuilder::Closed(const Transfer& transfer, absl::Status status,
                                       absl::Time ended, absl::string_view error_flags) const {
  ConnectionRecord r = base_;
  r.bytes_sent = transfer.bytes_sent;
  r.bytes_recv = transfer.bytes_recv;
  r.duration = ended - started_;
  if (!status.ok()) r.response_flags = std::string(error_flags);
  r.error = std::move(status);
  return r;
}

const char* RecordBuilder::DialFailureFlags(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kPermissionDenied:
      return "IDENTITY_ERROR";
    case absl::StatusCode::kUnauthenticated:
      return "TLS_FAILURE";
    default:
      return "CONNECT";
  }
}

}  // namespace ambient::hbone
