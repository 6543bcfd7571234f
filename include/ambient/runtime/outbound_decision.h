// ambient/runtime/outbound_decision.h: where a captured pod's outbound
// connection goes (ztunnel's src/proxy/outbound.rs build_request), as a pure
// function of the directory, the source workload and the original
// destination. No I/O: the node proxy (and tests) act on the result.
//
// The rules, in ztunnel's order:
//  1. The destination is a service VIP (the source's namespace preferred
//     when several services share it):
//     a. the service has a waypoint -> HBONE to the waypoint (its workload
//        IP on the port the waypoint resolves to, normally 15008) with
//        :authority = the original VIP:port; expected identities = the
//        waypoint's SANs + its workload identity; dst.service = the
//        service; dst workload = the waypoint.
//     b. else an endpoint is picked (below); none -> Unavailable
//        "no healthy upstream: VIP:port" (also when the service lacks the
//        port). A PASSTHROUGH service goes to the original destination.
//  2. The destination is a workload IP, or 1b picked an endpoint:
//     a. workload-addressed, the workload has a waypoint, and the source is
//        not that waypoint (identity and IP) -> HBONE to the waypoint with
//        :authority = the original IP:port.
//     b. an HBONE workload -> HBONE to its IP:hbone_port with :authority =
//        IP:target port, its identity (+ the service's SANs) expected.
//     c. else plain TCP to IP:target port.
//  3. Anything else: plain TCP to the original destination (passthrough).
//
// Endpoint selection (ztunnel's load_balance): endpoints are the workloads
// naming the service; unhealthy ones are skipped unless the service's
// health policy is ALLOW_ALL; the port must map to a target port (the
// endpoint's own mapping first, then the service's). With LoadBalancing
// mode STRICT or FAILOVER each endpoint is ranked by how many of the
// routing preferences (network, region, zone, subzone, node, cluster)
// match the source, in order, stopping at the first mismatch; STRICT keeps
// only endpoints matching all of them; the best rank wins. The pick among
// the remaining is random, weighted by capacity.
#ifndef AMBIENT_RUNTIME_OUTBOUND_DECISION_H_
#define AMBIENT_RUNTIME_OUTBOUND_DECISION_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ambient/identity/spiffe_id.h"
#include "ambient/runtime/socket.h"
#include "ambient/runtime/workload_directory.h"

namespace ambient::runtime {

struct OutboundRoute {
  enum class Kind {
    kPassthrough,  // plain TCP to next_hop
    kHbone,        // HBONE tunnel to next_hop, CONNECT hbone_target
  };
  Kind kind = Kind::kPassthrough;
  SocketAddress next_hop;      // where the proxy connects
  SocketAddress hbone_target;  // the CONNECT :authority (kHbone only)
  // SPIFFE IDs the next hop may present (kHbone only).
  std::vector<identity::SpiffeId> expected_identities;
  // The workload at next_hop (the endpoint or the waypoint), when known.
  std::optional<Workload> destination;
  // The service the client addressed ("" when none): dst.service.
  std::string destination_service;
  bool via_waypoint = false;
};

// RandomFn returns a uniformly random number in [0, n), n > 0.
using RandomFn = std::function<uint64_t(uint64_t n)>;

// DecideOutbound applies the rules above to a connection from `source`
// (the captured pod's workload; `downstream` its socket address) to
// `target` (the original destination). `hbone_port` is the port of the
// peers' HBONE listeners (15008). `random` defaults to a per-thread
// generator. Errors: Unavailable "no healthy upstream: ADDR"; NotFound
// "unknown waypoint: ..." when a waypoint cannot be resolved; Unavailable
// "no valid routing destination for workload: ..." when the chosen
// workload has no usable address.
absl::StatusOr<OutboundRoute> DecideOutbound(const WorkloadDirectory::View& dir,
                                             const Workload& source,
                                             const SocketAddress& downstream,
                                             const SocketAddress& target, uint16_t hbone_port,
                                             const RandomFn& random = nullptr);

// DecideAtWaypoint is the choice a waypoint makes for a CONNECT it accepted
// whose :authority is `target`: the rules above with `waypoint` (the
// waypoint's own workload) as the source, except that no waypoint is taken
// again (1a and 2a do not apply: the waypoint is the one they name). So a
// service VIP:port goes to an endpoint picked as in 1b (the waypoint's
// locality and namespace count), a workload IP:port to that workload
// (HBONE to its hbone_port, or plain TCP for a workload outside the mesh),
// anything else passes through. Errors as DecideOutbound's.
absl::StatusOr<OutboundRoute> DecideAtWaypoint(const WorkloadDirectory::View& dir,
                                               const Workload& waypoint,
                                               const SocketAddress& target, uint16_t hbone_port,
                                               const RandomFn& random = nullptr);

}  // namespace ambient::runtime

#endif  // AMBIENT_RUNTIME_OUTBOUND_DECISION_H_
