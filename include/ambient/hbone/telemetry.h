// ambient/hbone/telemetry.h: ztunnel-style access log lines and istio_tcp_*
// metrics for HBONE tunnels.
//
// One ConnectionRecord describes one proxied TCP connection (one stream).
// FormatAccessLog renders the "connection complete" line with ztunnel's
// fields in ztunnel's order (src.addr, src.identity, dst.addr,
// dst.hbone_addr, dst.identity, direction, bytes_sent, bytes_recv, duration,
// error); fields we do not know (workload, namespace, cluster, service
// without xDS) are left out, as ztunnel leaves out what it does not know.
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

struct ConnectionRecord {
  Direction direction = Direction::kOutbound;
  std::string src_addr;       // the client of the proxied connection
  std::string src_identity;   // SPIFFE ID, "" when unknown
  std::string dst_addr;       // next hop (outbound) / our HBONE listener (inbound)
  std::string dst_hbone_addr; // the CONNECT :authority
  std::string dst_identity;   // SPIFFE ID, "" when unknown
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
