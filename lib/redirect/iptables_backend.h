// Internal to lib/redirect: the iptables backend. Reads our part of the
// state with iptables-save, and changes it with one iptables-restore
// --noflush per family, run inside the namespace.
#ifndef AMBIENT_LIB_REDIRECT_IPTABLES_BACKEND_H_
#define AMBIENT_LIB_REDIRECT_IPTABLES_BACKEND_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ambient/netns/netns.h"
#include "ambient/redirect/apply.h"
#include "ambient/redirect/rules.h"

namespace ambient::redirect::internal {

struct IptablesTools {
  std::string restore, save, restore6, save6;  // restore6/save6 empty if absent
  bool legacy = false;
};

// Tools finds the binaries of `variant`; kAuto is detected once per process.
absl::StatusOr<IptablesTools> Tools(IptablesVariant variant);

// Our part of one family's state: the chains we own, their rules and the
// jumps to them from other chains.
struct IptState {
  struct Jump {
    std::string chain;
    // Installed: 1-based, among all rules of `chain`. Expected: the position
    // istio inserts it at ("-I CHAIN n"), or 0 when it is appended.
    int position = 0;
    std::string line;  // as iptables-save prints it ("-A CHAIN ...")
  };
  struct Table {
    std::vector<std::string> chains;
    std::map<std::string, std::vector<std::string>> rules;  // "-A ..." lines
    std::vector<Jump> jumps;
  };
  std::map<std::string, Table> tables;
  bool empty() const;
};

// ParseSave extracts the state of `ours` chains from iptables-save output.
IptState ParseSave(const std::string& save_output, const std::set<std::string>& ours);

// Expected returns the state `ruleset` produces, in save form.
IptState Expected(const IptRuleset& ruleset);

// OurChains is {ISTIO_PRERT, ISTIO_OUTPUT} in-pod, {ISTIO_POSTRT} for host.
std::set<std::string> OurChains(bool host);

// ReadState runs iptables-save (or ip6tables-save) in `ns`.
absl::StatusOr<IptState> ReadState(const IptablesTools& tools, IpFamily family,
                                   const netns::Netns& ns, const std::set<std::string>& ours);

// DiffState appends the drift of `have` from `want`: missing, extra or
// changed chains, rules and jumps, and jumps that istio inserts at a
// position but that sit elsewhere.
void DiffState(IpFamily family, const IptState& want, const IptState& have,
               std::vector<Drift>* out);

// ReconcilePayload is a restore payload that turns `have` into `want`
// (`want_lines` gives, per table, the rule lines to add in order).
std::string ReconcilePayload(const IptState& have, const IptState& want,
                             const std::map<std::string, std::vector<std::string>>& want_lines);

// TargetLines returns, per table, the restore lines of `ruleset`.
std::map<std::string, std::vector<std::string>> TargetLines(const IptRuleset& ruleset);

// SnapshotLines returns, per table, the lines that recreate `state` exactly
// (jumps inserted at their old positions).
std::map<std::string, std::vector<std::string>> SnapshotLines(const IptState& state);

// Restore runs `payload` through iptables-restore --noflush in `ns`.
absl::Status Restore(const IptablesTools& tools, IpFamily family, const netns::Netns& ns,
                     const std::string& payload);

}  // namespace ambient::redirect::internal

#endif  // AMBIENT_LIB_REDIRECT_IPTABLES_BACKEND_H_
