// ambient/redirect/apply.h: installing, checking and removing the rules
// inside a network namespace.
//
// Apply installs the rules of a Config (and, for in-pod rules, the fwmark
// policy routing of reference section 1.5) into a namespace, all or nothing:
// when it fails, the namespace is left as it was. Applying again is a no-op
// for iptables (the state is compared first) and an atomic replace with the
// same result for nftables. Check reports drift (missing, extra or modified
// rules, chains and routing); Delete removes exactly what Apply installs
// (the ISTIO_* chains and the jumps to them, the istio-ambient-* nftables
// tables, the fwmark rule and table-100 routes) and leaves every other rule
// alone.
//
// Backends. nftables is native: one netlink batch built with libnftnl, sent
// on a socket created inside the namespace (the calling thread enters the
// namespace only for socket(2)). iptables runs iptables-restore and
// iptables-save (nft or legacy variant, detected once per process) in a
// child process that joins the namespace before exec; the probe ipsets the
// host rules match are made over netlink (hash:ip with comments, as
// `ipset create NAME hash:ip comment`) and removed again if that apply
// fails. Policy routing: istio replaces a route that holds our key in table
// 100; a failed apply puts it back. A jump istio inserts at a position (the
// host's "-I POSTROUTING 1") is drift when it sits elsewhere, and apply puts
// it back in its place.
//
// Threads. Calls on distinct namespaces may run at once from several
// threads. Calls on one namespace must not overlap.
#ifndef AMBIENT_REDIRECT_APPLY_H_
#define AMBIENT_REDIRECT_APPLY_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/netns/netns.h"
#include "ambient/redirect/config.h"

namespace ambient::redirect {

enum class IptablesVariant {
  kAuto,    // legacy when the host's iptables-legacy-save shows rules, else nft
  kNft,     // iptables-nft-restore / iptables-nft-save
  kLegacy,  // iptables-legacy-restore / iptables-legacy-save
};

struct ApplyOptions {
  IptablesVariant iptables_variant = IptablesVariant::kAuto;
  // Testing: called at each stage of Apply ("routing", "iptables-ipv4",
  // "iptables-ipv6", "nftables"); an error return makes Apply fail there, as
  // if that stage had failed, so tests can prove nothing is left behind.
  std::function<absl::Status(absl::string_view stage)> fault_injector;
  // Testing: append a request the kernel rejects to the end of the nftables
  // batch, so the kernel itself aborts the whole transaction.
  bool nft_inject_bad_request = false;
};

// One difference between the namespace and the expected rules.
struct Drift {
  enum class Kind { kMissing, kExtra, kModified };
  Kind kind = Kind::kMissing;
  std::string where;   // e.g. "iptables ipv4 nat ISTIO_OUTPUT", "nftables istio-ambient-nat"
  std::string detail;  // the rule or object, as iptables-save / nft bytecode spells it

  // ToString renders "missing|extra|modified: WHERE: DETAIL".
  std::string ToString() const;
};

// Apply installs `config`'s rules into `ns` (see the file comment).
// Errors: InvalidArgument for a bad config; PermissionDenied without
// CAP_NET_ADMIN/CAP_SYS_ADMIN; NotFound when an iptables binary is missing;
// FailedPrecondition (or the kernel's errno as a status) when the kernel or
// iptables-restore refuses the rules, and FailedPrecondition naming them when
// the other backend's rules are installed in `ns` (our inet tables; ISTIO_*
// chains of iptables-nft); in every case the namespace is as before the call.
absl::Status Apply(const Config& config, const netns::Netns& ns, const ApplyOptions& options = {});

// Check compares `ns` with `config`'s rules and returns the differences
// (empty when the namespace is exactly as Apply leaves it; counters and rule
// handles are ignored). Errors as Apply, for reading the state.
absl::StatusOr<std::vector<Drift>> Check(const Config& config, const netns::Netns& ns,
                                         const ApplyOptions& options = {});

// Delete removes what Apply installs for `config.backend` (both IP families,
// and policy routing for in-pod configs); absent pieces are fine. Errors as
// Apply; the namespace is unchanged on failure of the iptables or nftables
// step.
absl::Status Delete(const Config& config, const netns::Netns& ns,
                    const ApplyOptions& options = {});

}  // namespace ambient::redirect

#endif  // AMBIENT_REDIRECT_APPLY_H_
