// ambient/netns/pod_sockets.h: the per-connection socket work a node proxy
// does for a captured pod: finding where a redirected connection was going,
// and making the upstream sockets it connects on the pod's behalf.
//
// Upstream sockets are made through the pod's SocketFactory so they live in
// the pod's netns, and carry the in-pod mark (0x539) so istio-cni's rules let
// them through instead of capturing them again. None of these functions
// connect: the caller connects (usually non-blocking) with its own loop.
// All functions are thread-safe.
#ifndef AMBIENT_NETNS_POD_SOCKETS_H_
#define AMBIENT_NETNS_POD_SOCKETS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "ambient/netns/fd.h"
#include "ambient/netns/netns.h"
#include "ambient/netns/pod_listeners.h"
#include "ambient/base/address.h"

namespace ambient::netns {

// OriginalDestination returns where an accepted, redirected TCP connection
// was headed: SO_ORIGINAL_DST (IPv4), then IP6T_SO_ORIGINAL_DST (IPv6), and
// when neither knows (no NAT entry, e.g. delivered by TPROXY) the socket's
// own local address. IPv4-mapped IPv6 results are returned as IPv4.
// Errors: InvalidArgument when `fd` is not a TCP/IP socket.
absl::StatusOr<SocketAddress> OriginalDestination(int fd);

// OutboundUpstreamSocket makes a non-blocking, close-on-exec TCP socket of
// `family` in the factory's netns with SO_MARK `mark` (0: no mark), for the
// proxy's connection out of a pod. Errors: as SocketFactory::Run;
// PermissionDenied when the mark cannot be set.
absl::StatusOr<UniqueFd> OutboundUpstreamSocket(SocketFactory& factory, int family,
                                                uint32_t mark = kInpodMark);

// InboundUpstreamSocket makes the socket for the last hop into a pod (proxy ->
// application at `destination`) that keeps the original client's source IP:
// a non-blocking TCP socket in the factory's netns with SO_MARK `mark`,
// IP_TRANSPARENT (IPV6_TRANSPARENT) and IP_FREEBIND, bound to
// `client`'s IP and port 0. When the client's IP equals the destination's,
// or their families differ, it is made without spoofing (plain, marked).
// `*spoofed` (if not null) tells which one happened. Errors: as
// OutboundUpstreamSocket; PermissionDenied when IP_TRANSPARENT is refused;
// InvalidArgument for an empty address.
absl::StatusOr<UniqueFd> InboundUpstreamSocket(SocketFactory& factory,
                                               const SocketAddress& client,
                                               const SocketAddress& destination,
                                               uint32_t mark = kInpodMark,
                                               bool* spoofed = nullptr);

}  // namespace ambient::netns

#endif  // AMBIENT_NETNS_POD_SOCKETS_H_
