// ambient/redirect/render.h: the rules as text, byte for byte istio's.
//
// RenderIptables spells one family's ruleset as the iptables-restore payload
// istio-cni feeds to `iptables-restore --noflush` (tables in alphabetical
// order, `-N` declarations first, then the rules in insertion order, each
// table closed by COMMIT). RenderNftables spells the nftables ruleset as the
// transaction script `nft -f` accepts. Render picks by config.backend: for
// iptables with IPv6 it is the IPv4 payload followed by the IPv6 payload.
#ifndef AMBIENT_REDIRECT_RENDER_H_
#define AMBIENT_REDIRECT_RENDER_H_

#include <string>

#include "absl/status/statusor.h"
#include "ambient/redirect/config.h"
#include "ambient/redirect/rules.h"

namespace ambient::redirect {

// RenderIptables returns the restore payload of `ruleset`, without a trailing
// newline after the last COMMIT (as in istio's goldens).
std::string RenderIptables(const IptRuleset& ruleset);

// RenderIptablesRule spells one rule as "-A CHAIN ..." (or "-I CHAIN n ...").
std::string RenderIptablesRule(const IptRule& rule);

// SaveFormOf spells `rule` the way iptables-save prints it back ("-A CHAIN"
// always, explicit -m tcp/udp for ports, /32 or /128 on single addresses,
// protocol before other matches, --to-ports). The drift check compares these.
std::string SaveFormOf(const IptRule& rule, IpFamily family);

// RenderNftables returns the nft script of `ruleset`, each line ending in a
// newline.
std::string RenderNftables(const NftRuleset& ruleset);

// RenderNftRule spells the body of one rule (after "add rule inet TABLE ").
std::string RenderNftRule(const NftRule& rule);

// Render returns the text for `config`'s backend (see the file comment).
// Errors as BuildIptables / BuildNftables.
absl::StatusOr<std::string> Render(const Config& config);

// RenderFamily returns one family's restore payload for the iptables backend,
// ending in a newline, as `iptables-restore` (IPv4) or `ip6tables-restore`
// (IPv6) reads it. Errors: InvalidArgument for the nftables backend (its one
// inet script covers both families) and for IPv6 without config.ipv6; else
// as BuildIptables.
absl::StatusOr<std::string> RenderFamily(const Config& config, IpFamily family);

}  // namespace ambient::redirect

#endif  // AMBIENT_REDIRECT_RENDER_H_
