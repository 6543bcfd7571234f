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
#include "absl/strings/string_view.h"
#include "ambient/redirect/apply.h"
#include "ambient/redirect/rules.h"
#include "redirect/ipset_netlink.h"
#include "redirect/netlink.h"

namespace ambient::redirect::internal {

// An nf_tables transaction encoded as bytes, its messages numbered from 1;
// it can be sent on any nfnetlink socket, any number of times.
struct EncodedBatch {
  std::string bytes;     // batch begin, the requests, batch end
  uint32_t messages = 0;  // how many netlink messages `bytes` holds
  uint32_t ack_seq = 0;   // sequence number of the last request (it asks for an ack)
};

// The message of the error NftApply and NftSend give when the kernel refuses
// an apply batch.
inline constexpr char kApplyFailed[] =
    "installing the nftables rules (the kernel applied none of them)";

// NftEncodeApply encodes what `nft -f` does with istio's script for
// `ruleset` (add table, flush table, add chains, sets and rules), plus, for
// tests, a request the kernel rejects at the end.
absl::StatusOr<EncodedBatch> NftEncodeApply(const NftRuleset& ruleset, bool inject_bad_request);

// NftSend sends `batch` on `nl` (renumbered for the socket) and waits for the
// kernel's verdict on the whole transaction; `what` prefixes the error.
absl::Status NftSend(NetlinkSocket& nl, const EncodedBatch& batch, absl::string_view what);

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

// NftChains lists the chains of `family` as "table/chain" (iptables-nft keeps
// iptables' chains as nftables chains of family NFPROTO_IPV4 / NFPROTO_IPV6).
absl::StatusOr<std::set<std::string>> NftChains(NetlinkSocket& nl, uint8_t family);

// NftSetAdd adds `address` with `comment` to the set `set` of inet table
// `table`, replacing the comment of a member that is there already, in one
// atomic batch. NotFound when the table or set does not exist.
absl::Status NftSetAdd(NetlinkSocket& nl, const std::string& table, const std::string& set,
                       const RawAddress& address, const std::string& comment);

// NftSetDel removes `address` from the set (absent is fine).
absl::Status NftSetDel(NetlinkSocket& nl, const std::string& table, const std::string& set,
                       const RawAddress& address);

// NftSetList returns the members of the set with their comments.
absl::StatusOr<std::vector<SetMember>> NftSetList(NetlinkSocket& nl, const std::string& table,
                                                  const std::string& set);

// NftRuleBytecode spells the expressions of one rule as libnftnl prints them
// ("[ meta load l4proto => reg 1 ] ..."), counters without their values.
std::string NftRuleBytecode(const NftRule& rule);

}  // namespace ambient::redirect::internal

#endif  // AMBIENT_LIB_REDIRECT_NFT_NATIVE_H_
