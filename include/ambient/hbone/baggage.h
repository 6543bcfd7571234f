// ambient/hbone/baggage.h: the `baggage` header ztunnel puts on CONNECT
// requests (the client's workload) and on 200 answers (the server's).
//
// The value is a comma-joined list of key=value members (W3C baggage) with
// ztunnel's keys: k8s.cluster.name, k8s.namespace.name,
// k8s.<type>.name (type deployment|cronjob|pod|job), service.name
// (canonical service), service.version (canonical revision), cloud.region,
// cloud.availability_zone. Only non-empty values are sent.
//
// Threads: pure functions.
#ifndef AMBIENT_HBONE_BAGGAGE_H_
#define AMBIENT_HBONE_BAGGAGE_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/hbone/telemetry.h"

namespace ambient::hbone {

// The longest baggage value ParseBaggage accepts, and the longest member
// value it keeps.
inline constexpr size_t kMaxBaggageSize = 8192;
inline constexpr size_t kMaxBaggageValue = 256;

// BuildBaggage renders `w` as a baggage value ("" when nothing is known).
// Values are percent-encoded where W3C baggage does not allow the byte
// (controls, space, '"', ',', ';', '\\', '%', non-ASCII). The workload name
// goes under k8s.<workload_type>.name (deployment when the type is empty or
// not one of deployment|cronjob|pod|job).
std::string BuildBaggage(const WorkloadInfo& w);

// CheckWorkloadInfo is the check for a workload a host describes itself
// with (HboneServer::SetWorkload, TunnelTarget::source_workload, the C
// ABI's _set_workload calls): each field at most kMaxBaggageValue bytes
// without control bytes (so ParseBaggage on the other side keeps it), and
// workload_type empty or one of deployment|cronjob|pod|job. Fields are
// checked in declaration order; errors (InvalidArgument): "workload <field>
// is longer than 256 bytes", "workload <field> contains a control
// character", "workload_type \"<t>\" is not deployment, cronjob, pod or job".
absl::Status CheckWorkloadInfo(const WorkloadInfo& w);

// ParseBaggage reads a baggage value leniently: members without '=' or with
// an unknown key are skipped, whitespace around keys and values is
// trimmed, member properties (";...") are dropped, values are
// percent-decoded, and a value that is empty, malformed (a bad %-escape),
// longer than kMaxBaggageValue bytes once decoded or that decodes to
// control bytes is ignored. Errors (InvalidArgument,
// nothing returned): a value longer than kMaxBaggageSize. A later member
// replaces an earlier one with the same key.
absl::StatusOr<WorkloadInfo> ParseBaggage(absl::string_view value);

}  // namespace ambient::hbone

#endif  // AMBIENT_HBONE_BAGGAGE_H_
