// ambient/hbone/telemetry.h: ztunnel-style access log lines and istio_tcp_*
// metrics for HBONE tunnels.
//
// One ConnectionRecord describes one proxied TCP connection (one stream).
// FormatAccessLog renders the "connection complete" line with ztunnel's
// fields in ztunnel's order (src.addr, src.workload, src.namespace,
// src.identity, src.cluster, dst.addr, dst.hbone_addr, dst.service,
// dst.workload, dst.namespace, dst.identity, dst.cluster, direction,
// bytes_sent, bytes_recv, duration, error); fields the record does not know
// (empty strings) are left out, as ztunnel leaves out what it does not know.
// Workload metadata (WorkloadInfo) comes from the host's workload directory
// or from the peer's `baggage` header (ambient/hbone/baggage.h).
// bytes_sent counts what this proxy forwarded toward the remote side and
// bytes_recv the reverse, for both directions (ztunnel's log convention).
//
// Metrics keeps Prometheus counters with Istio's names and labels; the
// byte counters use Istio's metric convention (received = client -> server
// payload, sent = server -> client payload, whoever reports).
//
// Threads: FormatAccessLog is pure; Metrics may be used from any threads.
#ifndef AMBIENT_HBONE_TELEMETRY_H_
#define AMBIENT_HBONE_TELEMETRY_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace ambient::hbone {

enum class Direction { kOutbound, kInbound };

// WorkloadInfo is what telemetry knows about one side's workload (the
// fields of ztunnel's access log, metric labels and baggage). Every field
// may be empty ("unknown"): unlike runtime::Workload (a directory entry,
// which produces one with Workload::Telemetry()), it may come from a peer's
// baggage header, so it holds no addresses, identity or policies.
struct WorkloadInfo {
  std::string name;                // workload name (e.g. the deployment)
  std::string workload_type;       // deployment|cronjob|pod|job ("" = deployment)
  std::string ns;                  // namespace
  std::string canonical_service;   // service.istio.io/canonical-name
  std::string canonical_revision;  // service.istio.io/canonical-revision
  std::string cluster;             // cluster id
  std::string region;              // locality
  std::string zone;

  // empty is true when no field is set.
  bool empty() const;
  // Merge fills the fields of *this that are empty from `other`.
  void Merge(const WorkloadInfo& other);
  friend bool operator==(const WorkloadInfo& a, const WorkloadInfo& b);
  friend bool operator!=(const WorkloadInfo& a, const WorkloadInfo& b) { return !(a == b); }
};

struct ConnectionRecord {
  Direction direction = Direction::kOutbound;
  std::string src_addr;       // the client of the proxied connection
  std::string src_identity;   // SPIFFE ID, "" when unknown
  WorkloadInfo src;           // the client's workload, where known
  std::string dst_addr;       // next hop (outbound) / our HBONE listener (inbound)
  std::string dst_hbone_addr; // the CONNECT :authority
  std::string dst_service;    // destination service host name, "" when unknown
  std::string dst_identity;   // SPIFFE ID, "" when unknown
  WorkloadInfo dst;           // the server's workload, where known
  uint64_t bytes_sent = 0;
  uint64_t bytes_recv = 0;
  absl::Duration duration;
  absl::Status error;         // OK for a clean close
  // response_flags for metrics: "-" when OK; e.g. "CONNECT", "TLS_FAILURE",
  // "DENY", "IDENTITY_ERROR" otherwise.
  std::string response_flags = "-";
};

// FormatAccessLog returns the message of the access log line (without a
// timestamp or level): `connection complete src.addr=... ...`.
std::string FormatAccessLog(const ConnectionRecord& record);

// Metrics labels each series with Istio's TCP labels: the record's
// workload metadata (source_workload, source_workload_namespace,
// source_canonical_service / source_app, source_canonical_revision /
// source_version, source_cluster and the destination_* twins; region and
// zone labels are added when either side's locality is known), principals
// without spiffe://, destination_service = dst_service or else the
// :authority; "unknown" for every missing value.
class Metrics {
 public:
  // ConnectionOpened / ConnectionClosed / ConnectionFailed count one
  // connection; Closed and Failed also add its bytes.
  void ConnectionOpened(const ConnectionRecord& record);
  void ConnectionClosed(const ConnectionRecord& record);

  // Prometheus renders every counter in the text exposition format, with
  // HELP and TYPE lines, sorted by name and labels.
  std::string Prometheus() const;

  // Value returns one counter (0 if absent), for tests and hosts:
  // `name` without labels summed over all label sets.
  uint64_t Total(const std::string& name) const;

 private:
  void Add(const std::string& name, const std::string& labels, uint64_t v);
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, uint64_t>> counters_;
};

}  // namespace ambient::hbone

#endif  // AMBIENT_HBONE_TELEMETRY_H_
