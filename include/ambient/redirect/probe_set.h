// ambient/redirect/probe_set.h: the host's kubelet-probe address sets.
//
// The host rules (Config::host) SNAT kubelet's probes only when they go to
// an enrolled pod: the pod's IPs are members of the probe sets. For the
// iptables backend those are the ipsets istio-inpod-probes-v4 and
// istio-inpod-probes-v6 (hash:ip with comments); for nftables, the sets of
// the same names in table inet istio-ambient-nat. Each member carries the
// pod's UID as its comment, as istio-cni does, so that removing a pod never
// removes an address that a newer pod has reused. Apply with a host config
// creates the sets; these calls only add, remove and list members, over
// netlink (no ipset or nft process), in the namespace `host` (normally the
// node's own).
//
// Threads: like apply.h (calls on one namespace must not overlap).
#ifndef AMBIENT_REDIRECT_PROBE_SET_H_
#define AMBIENT_REDIRECT_PROBE_SET_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/netns/netns.h"
#include "ambient/redirect/config.h"

namespace ambient::redirect {

// One member of a probe set.
struct ProbeMember {
  std::string address;  // as inet_ntop spells it
  std::string pod_uid;  // the member's comment ("" when it has none)
};

// AddProbeAddress adds the pod address `address` (literal IPv4 or IPv6; an
// IPv4-mapped IPv6 address counts as IPv4) with `pod_uid` as its comment to
// the probe set of its family for `config.backend`. When the address is a
// member already, its UID is replaced (the address now belongs to this pod).
// Errors: InvalidArgument for a bad address, an IPv6 address when
// config.ipv6 is off, or a UID that is empty, longer than 255 bytes or not
// printable ASCII without spaces, quotes or backslashes; NotFound when the
// set does not exist (the host rules were not applied); PermissionDenied
// without CAP_NET_ADMIN. On error the set is unchanged.
absl::Status AddProbeAddress(const Config& config, const netns::Netns& host,
                             absl::string_view address, absl::string_view pod_uid);

// RemoveProbeAddress removes `address` from its probe set when its UID is
// `pod_uid` (any UID when `pod_uid` is empty). An absent address is not an
// error. Errors: as AddProbeAddress, plus FailedPrecondition naming the
// other UID when the address belongs to another pod (nothing is removed).
absl::Status RemoveProbeAddress(const Config& config, const netns::Netns& host,
                                absl::string_view address, absl::string_view pod_uid);

// ListProbeAddresses returns the members of the IPv4 set and, with
// config.ipv6, of the IPv6 set. Errors: NotFound when a set does not exist;
// PermissionDenied without CAP_NET_ADMIN.
absl::StatusOr<std::vector<ProbeMember>> ListProbeAddresses(const Config& config,
                                                            const netns::Netns& host);

}  // namespace ambient::redirect

#endif  // AMBIENT_REDIRECT_PROBE_SET_H_
