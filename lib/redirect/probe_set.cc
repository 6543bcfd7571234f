#include "ambient/redirect/probe_set.h"

#include <sys/socket.h>

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "ambient/base/address.h"
#include "ambient/redirect/rules.h"
#include "redirect/ipset_netlink.h"
#include "redirect/netlink.h"
#include "redirect/nft_native.h"

namespace ambient::redirect {
namespace {

using internal::RawAddress;

absl::StatusOr<RawAddress> ParseAddress(const Config& config, absl::string_view text) {
  absl::StatusOr<IpAddress> ip = IpAddress::Parse(text);
  if (!ip.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an IP address: \"", absl::CEscape(text), "\""));
  }
  // An IPv4-mapped IPv6 address is the IPv4 pod it names.
  const IpAddress plain = ip->Unmapped();
  RawAddress a;
  a.v6 = !plain.is_v4();
  memcpy(a.bytes, plain.bytes().data(), plain.bytes().size());
  if (a.v6 && !config.ipv6) {
    return absl::InvalidArgumentError(
        absl::StrCat("IPv6 address ", text, " but the config has IPv6 off"));
  }
  return a;
}

absl::Status ValidateUid(absl::string_view uid, bool allow_empty) {
  if (uid.empty() && !allow_empty) return absl::InvalidArgumentError("the pod UID is empty");
  if (uid.size() > 255) return absl::InvalidArgumentError("the pod UID is longer than 255 bytes");
  for (char c : uid) {
    if (c <= ' ' || c > '~' || c == '"' || c == '\\') {
      return absl::InvalidArgumentError("the pod UID must be printable ASCII without spaces, quotes or backslashes");
    }
  }
  return absl::OkStatus();
}

std::string SetName(bool v6) { return v6 ? kProbeSetV6 : kProbeSetV4; }

std::string Text(const RawAddress& a) {
  return IpAddress::FromBytes(absl::string_view(reinterpret_cast<const char*>(a.bytes), a.size()))
      ->ToString();
}

absl::StatusOr<internal::NetlinkSocket> OpenSocket(const netns::Netns& ns) {
  if (!ns.valid()) return absl::InvalidArgumentError("no network namespace");
  absl::StatusOr<netns::UniqueFd> fd = netns::SocketIn(ns, AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
  if (!fd.ok()) return fd.status();
  return internal::NetlinkSocket::Adopt(*std::move(fd));
}

absl::StatusOr<std::vector<internal::SetMember>> Members(const Config& config,
                                                        internal::NetlinkSocket& nl, bool v6) {
  if (config.backend == Backend::kNftables) return internal::NftSetList(nl, kNftNatTable, SetName(v6));
  return internal::IpsetList(nl, SetName(v6));
}

}  // namespace

absl::Status AddProbeAddress(const Config& config, const netns::Netns& host,
                             absl::string_view address, absl::string_view pod_uid) {
  absl::StatusOr<RawAddress> a = ParseAddress(config, address);
  if (!a.ok()) return a.status();
  if (absl::Status s = ValidateUid(pod_uid, false); !s.ok()) return s;
  absl::StatusOr<internal::NetlinkSocket> nl = OpenSocket(host);
  if (!nl.ok()) return nl.status();
  const std::string uid(pod_uid);
  if (config.backend == Backend::kNftables) {
    return internal::NftSetAdd(*nl, kNftNatTable, SetName(a->v6), *a, uid);
  }
  return internal::IpsetAdd(*nl, SetName(a->v6), *a, uid);
}

absl::Status RemoveProbeAddress(const Config& config, const netns::Netns& host,
                                absl::string_view address, absl::string_view pod_uid) {
  absl::StatusOr<RawAddress> a = ParseAddress(config, address);
  if (!a.ok()) return a.status();
  if (absl::Status s = ValidateUid(pod_uid, true); !s.ok()) return s;
  absl::StatusOr<internal::NetlinkSocket> nl = OpenSocket(host);
  if (!nl.ok()) return nl.status();
  absl::StatusOr<std::vector<internal::SetMember>> members = Members(config, *nl, a->v6);
  if (!members.ok()) return members.status();
  bool present = false;
  for (const internal::SetMember& m : *members) {
    if (m.address.v6 != a->v6 || memcmp(m.address.bytes, a->bytes, a->size()) != 0) continue;
    if (!pod_uid.empty() && m.comment != pod_uid) {
      return absl::FailedPreconditionError(absl::StrCat(
          "probe address ", Text(*a), " belongs to pod ", m.comment, ", not ", pod_uid));
    }
    present = true;
  }
  if (!present) return absl::OkStatus();
  if (config.backend == Backend::kNftables) {
    return internal::NftSetDel(*nl, kNftNatTable, SetName(a->v6), *a);
  }
  return internal::IpsetDel(*nl, SetName(a->v6), *a);
}

absl::StatusOr<std::vector<ProbeMember>> ListProbeAddresses(const Config& config,
                                                            const netns::Netns& host) {
  absl::StatusOr<internal::NetlinkSocket> nl = OpenSocket(host);
  if (!nl.ok()) return nl.status();
  std::vector<ProbeMember> out;
  for (bool v6 : {false, true}) {
    if (v6 && !config.ipv6) break;
    absl::StatusOr<std::vector<internal::SetMember>> members = Members(config, *nl, v6);
    if (!members.ok()) return members.status();
    for (const internal::SetMember& m : *members) out.push_back({Text(m.address), m.comment});
  }
  return out;
}

}  // namespace ambient::redirect
