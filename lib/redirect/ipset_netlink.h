// Internal to lib/redirect: the kernel's ip_set over nfnetlink
// (NFNL_SUBSYS_IPSET), for the host probe sets of the iptables backend:
// add an address with a comment, delete one, list a set.
#ifndef AMBIENT_LIB_REDIRECT_IPSET_NETLINK_H_
#define AMBIENT_LIB_REDIRECT_IPSET_NETLINK_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "redirect/netlink.h"

namespace ambient::redirect::internal {

// A binary address: 4 bytes (IPv4) or 16 (IPv6).
struct RawAddress {
  bool v6 = false;
  unsigned char bytes[16] = {};
  size_t size() const { return v6 ? 16 : 4; }
};

// One member of a set: its address and its comment ("" when it has none).
struct SetMember {
  RawAddress address;
  std::string comment;
};

// IpsetCreate makes the probe-style set `set` (hash:ip with comments, of
// the family `v6` says) unless an identical one exists; *created says
// whether this call made it. FailedPrecondition when a set of that name but
// another kind exists.
absl::Status IpsetCreate(NetlinkSocket& nl, const std::string& set, bool v6, bool* created);

// IpsetDestroy removes the set `set` (absent is fine).
absl::Status IpsetDestroy(NetlinkSocket& nl, const std::string& set);

// IpsetAdd adds `address` to the ipset `set` with `comment`; when the
// address is there already its comment is replaced. NotFound when there is
// no such set.
absl::Status IpsetAdd(NetlinkSocket& nl, const std::string& set, const RawAddress& address,
                      const std::string& comment);

// IpsetDel removes `address` from `set` (absent is fine). NotFound when
// there is no such set.
absl::Status IpsetDel(NetlinkSocket& nl, const std::string& set, const RawAddress& address);

// IpsetList returns the members of `set`. NotFound when there is no such set.
absl::StatusOr<std::vector<SetMember>> IpsetList(NetlinkSocket& nl, const std::string& set);

}  // namespace ambient::redirect::internal

#endif  // AMBIENT_LIB_REDIRECT_IPSET_NETLINK_H_
