// Internal to lib/redirect: istio-cni's in-pod policy routing over rtnetlink,
// the equivalent of
//   ip rule add fwmark 0x111/0xfff pref 32764 lookup 100
//   ip route replace local 0.0.0.0/0 dev lo table 100
// and the IPv6 twins, on a rtnetlink socket that lives in the pod namespace.
#ifndef AMBIENT_LIB_REDIRECT_POLICY_ROUTING_H_
#define AMBIENT_LIB_REDIRECT_POLICY_ROUTING_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "redirect/netlink.h"

namespace ambient::redirect::internal {

// What of ours is installed, per family.
struct RoutingState {
  bool rule_v4 = false;
  bool rule_v6 = false;
  bool route_v4 = false;
  bool route_v6 = false;
  int extra_rules = 0;  // duplicates of our fwmark rule
  // Routes AddRouting replaced (another route held our key in table 100), as
  // the kernel dumped them before: UndoRouting puts them back.
  std::vector<std::string> replaced;
};

// ReadRouting dumps the rules and table 100 of both families.
absl::StatusOr<RoutingState> ReadRouting(NetlinkSocket& nl);

// AddRouting installs the routes (replace) then the rules (exclusive create;
// an existing identical rule is kept). `with_v6` adds the IPv6 twins.
// `created` says which pieces did not exist before and keeps the routes it
// replaced, for UndoRouting. On failure the table is put back as it was
// (created pieces removed, replaced routes restored).
absl::Status AddRouting(NetlinkSocket& nl, bool with_v6, RoutingState* created);

// DeleteRouting removes the pieces marked in `which` (missing ones are fine).
absl::Status DeleteRouting(NetlinkSocket& nl, const RoutingState& which);

// UndoRouting reverts an AddRouting that succeeded: removes the pieces it
// created and puts back the routes it replaced.
absl::Status UndoRouting(NetlinkSocket& nl, const RoutingState& created);

// RoutingDrift lists what is missing compared with `with_v6`.
std::vector<std::string> RoutingDrift(const RoutingState& have, bool with_v6);

}  // namespace ambient::redirect::internal

#endif  // AMBIENT_LIB_REDIRECT_POLICY_ROUTING_H_
