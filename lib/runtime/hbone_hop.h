// Hop: an accepted CONNECT carried on over HBONE (Upstream::Hbone, e.g. a
// waypoint's second leg).
#ifndef AMBIENT_LIB_RUNTIME_HBONE_HOP_H_
#define AMBIENT_LIB_RUNTIME_HBONE_HOP_H_

#include "ambient/runtime/hbone_server.h"
#include "runtime/hbone_inbound.h"

namespace ambient::runtime {

// StartHop carries `in` on through `upstream.client` to `upstream.hbone`.
// The two legs meet at a socketpair: the upstream tunnel
// (HboneClient::TunnelWith) owns its far end; the downstream stream is
// answered 200 and relayed to its near end once the upstream CONNECT got
// its 200 (InboundHost::Reply), or answered 503 when the upstream refused
// or failed (InboundHost::UpstreamFailed). Until then a PendingUpstream
// listens on the downstream stream: a reset by the client cancels the
// upstream. Once relaying, a downstream reset or broken connection cancels
// the upstream stream and an upstream reset resets the downstream stream.
// The host's pending slot for `in` is taken by the caller and given back
// through UpstreamSettled / UpstreamCancelled.
void StartHop(InboundHost* host, const InboundConnect& in, const Upstream& upstream);

}  // namespace ambient::runtime

#endif  // AMBIENT_LIB_RUNTIME_HBONE_HOP_H_
