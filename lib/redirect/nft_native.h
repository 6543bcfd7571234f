// Internal to lib/redirect: the native nftables backend. Encodes an
// NftRuleset as one nf_tables netlink batch (with libnftnl) that does what
// `nft -f` does with istio's script: add table, flush table, add chains,
// add rules; reads the installed tables back for the drift check; deletes
// our tables.
#ifndef AMBIENT_LIB_REDIRECT_NFT_NATIVE_H_
#define AMBIENT_LIB_REDIRECT_NFT_NATIVE_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ambient/redirect/apply.h"
#include "ambient/redirect/rules.h"
#include "redirect/netlink.h"

namespace ambient::redirect::internal {

// NftApply sends the whole ruleset as one atomic batch.
absl::Status NftApply(NetlinkSocket& nl, const NftRuleset& ruleset, bool inject_bad_request);

// NftCheck compares the installed tables named in `ruleset` with it.
absl::StatusOr<std::vector<Drift>> NftCheck(NetlinkSocket& nl, const NftRuleset& ruleset);

// NftDelete removes the tables `tables` of `family` (NFPROTO_INET for ours;
// absent ones are fine), in one atomic batch.
absl::Status NftDelete(NetlinkSocket& nl, const std::vector<std::string>& tables,
                       uint8_t family = 1 /* NFPROTO_INET */);

// NftTables lists the names of the tables of `family` (NFPROTO_IPV4, ...).
absl::StatusOr<std::set<std::string>> NftTables(NetlinkSocket& nl, uint8_t family);

// NftRuleBytecode spells the expressions of one rule as libnftnl prints them
// ("[ meta load l4proto => reg 1 ] ..."), counters without their values.
std::string NftRuleBytecode(const NftRule& rule);

}  // namespace ambient::redirect::internal

#endif  // AMBIENT_LIB_REDIRECT_NFT_NATIVE_H_
