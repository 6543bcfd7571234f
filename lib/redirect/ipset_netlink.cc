#include "redirect/ipset_netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/ipset/ip_set.h>
#include <linux/netfilter/ipset/ip_set_hash.h>
#include <linux/netfilter/nfnetlink.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "ambient/base/errno_status.h"
#include "ambient/base/status.h"

namespace ambient::redirect::internal {
namespace {

constexpr size_t kRequestBuffer = 1024;

// Start writes the netlink and nfnetlink headers of an ipset command and the
// protocol and set name attributes every command carries.
struct nlmsghdr* Start(char* buf, uint8_t cmd, uint16_t flags, uint32_t seq,
                       const std::string& set) {
  struct nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = (NFNL_SUBSYS_IPSET << 8) | cmd;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
  nlh->nlmsg_seq = seq;
  auto* nfg = static_cast<struct nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(struct nfgenmsg)));
  nfg->nfgen_family = NFPROTO_IPV4;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = 0;
  mnl_attr_put_u8(nlh, IPSET_ATTR_PROTOCOL, IPSET_PROTOCOL);
  mnl_attr_put_strz(nlh, IPSET_ATTR_SETNAME, set.c_str());
  return nlh;
}

void PutAddress(struct nlmsghdr* nlh, const RawAddress& a) {
  struct nlattr* ip = mnl_attr_nest_start(nlh, IPSET_ATTR_IP);
  mnl_attr_put(nlh, (a.v6 ? IPSET_ATTR_IPADDR_IPV6 : IPSET_ATTR_IPADDR_IPV4) | NLA_F_NET_BYTEORDER,
               a.size(), a.bytes);
  mnl_attr_nest_end(nlh, ip);
}

absl::Status IpsetError(int err, absl::string_view what, const std::string& set) {
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(absl::StrCat(what, ": there is no ipset ", set,
                                              " (apply the host rules first)"));
    case IPSET_ERR_PROTOCOL:
      return absl::UnimplementedError(absl::StrCat(what, ": the kernel's ipset protocol is not supported"));
    case IPSET_ERR_COMMENT:
      return absl::FailedPreconditionError(absl::StrCat(what, ": ipset ", set, " was made without comments"));
    case IPSET_ERR_IPADDR_IPV4:
    case IPSET_ERR_IPADDR_IPV6:
    case IPSET_ERR_INVALID_FAMILY:
      return absl::InvalidArgumentError(absl::StrCat(what, ": ipset ", set, " holds the other IP family"));
    case IPSET_ERR_EXIST:
      return absl::AlreadyExistsError(absl::StrCat(what, ": ipset ", set, " exists"));
    case IPSET_ERR_HASH_FULL:
      return absl::ResourceExhaustedError(absl::StrCat(what, ": ipset ", set, " is full"));
    default:
      if (err >= IPSET_ERR_PRIVATE) {
        return absl::FailedPreconditionError(absl::StrCat(what, ": ipset error ", err));
      }
      return ErrnoStatus(err, what);
  }
}

absl::Status Exchange(NetlinkSocket& nl, struct nlmsghdr* nlh, absl::string_view what,
                      const std::string& set) {
  nlh->nlmsg_flags |= NLM_F_ACK;
  if (absl::Status s = nl.Send(nlh, nlh->nlmsg_len); !s.ok()) return s;
  absl::StatusOr<std::vector<Ack>> acks = nl.CollectAcks(nlh->nlmsg_seq);
  if (!acks.ok()) return acks.status();
  for (const Ack& a : *acks) {
    if (a.error != 0) return IpsetError(-a.error, what, set);
  }
  return absl::OkStatus();
}

// ForEach calls `fn` for each attribute in [begin, end) that fits.
template <typename Fn>
void ForEach(const void* begin, const void* end, Fn&& fn) {
  for (const auto* attr = static_cast<const struct nlattr*>(begin);
       mnl_attr_ok(attr, static_cast<int>(static_cast<const char*>(end) -
                                          reinterpret_cast<const char*>(attr)));
       attr = mnl_attr_next(attr)) {
    fn(attr);
  }
}

template <typename Fn>
void ForEachNested(const struct nlattr* nest, Fn&& fn) {
  const char* payload = static_cast<const char*>(mnl_attr_get_payload(nest));
  ForEach(payload, payload + mnl_attr_get_payload_len(nest), fn);
}

// Member parses one IPSET_ATTR_DATA of a list reply.
bool Member(const struct nlattr* data, SetMember* out) {
  bool have_ip = false;
  ForEachNested(data, [&](const struct nlattr* attr) {
    switch (mnl_attr_get_type(attr)) {
      case IPSET_ATTR_IP:
        ForEachNested(attr, [&](const struct nlattr* inner) {
          const uint16_t type = mnl_attr_get_type(inner);
          const uint16_t len = mnl_attr_get_payload_len(inner);
          if (type == IPSET_ATTR_IPADDR_IPV4 && len == 4) {
            out->address.v6 = false;
          } else if (type == IPSET_ATTR_IPADDR_IPV6 && len == 16) {
            out->address.v6 = true;
          } else {
            return;
          }
          memcpy(out->address.bytes, mnl_attr_get_payload(inner), len);
          have_ip = true;
        });
        break;
      case IPSET_ATTR_COMMENT: {
        const char* text = static_cast<const char*>(mnl_attr_get_payload(attr));
        out->comment.assign(text, strnlen(text, mnl_attr_get_payload_len(attr)));
        break;
      }
      default: break;
    }
  });
  return have_ip;
}

}  // namespace

absl::Status IpsetCreate(NetlinkSocket& nl, const std::string& set, bool v6, bool* created) {
  *created = false;
  const uint8_t family = v6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
  // The newest hash:ip revision this kernel has (comments need 2 or later).
  uint8_t revision = 0;
  {
    char buf[kRequestBuffer];
    struct nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = (NFNL_SUBSYS_IPSET << 8) | IPSET_CMD_TYPE;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    nlh->nlmsg_seq = nl.NextSeq();
    auto* nfg = static_cast<struct nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(struct nfgenmsg)));
    nfg->nfgen_family = family;
    nfg->version = NFNETLINK_V0;
    nfg->res_id = 0;
    mnl_attr_put_u8(nlh, IPSET_ATTR_PROTOCOL, IPSET_PROTOCOL);
    mnl_attr_put_strz(nlh, IPSET_ATTR_TYPENAME, "hash:ip");
    mnl_attr_put_u8(nlh, IPSET_ATTR_FAMILY, family);
    absl::Status s = nl.Dump(nlh, nlh->nlmsg_len, nlh->nlmsg_seq, [&](const struct nlmsghdr* h) {
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nfgenmsg))) return absl::OkStatus();
      ForEach(mnl_nlmsg_get_payload_offset(h, sizeof(struct nfgenmsg)), mnl_nlmsg_get_payload_tail(h),
              [&](const struct nlattr* attr) {
                if (mnl_attr_get_type(attr) == IPSET_ATTR_REVISION &&
                    mnl_attr_get_payload_len(attr) >= 1) {
                  revision = mnl_attr_get_u8(attr);
                }
              });
      return absl::OkStatus();
    });
    if (!s.ok()) return Prefixed("asking the kernel for the hash:ip ipset type", s);
    if (revision < 2) return absl::UnimplementedError("the kernel's hash:ip ipsets have no comments");
  }
  auto create = [&](bool exclusive) {
    char buf[kRequestBuffer];
    struct nlmsghdr* nlh = Start(buf, IPSET_CMD_CREATE, exclusive ? NLM_F_EXCL : 0, nl.NextSeq(), set);
    mnl_attr_put_strz(nlh, IPSET_ATTR_TYPENAME, "hash:ip");
    mnl_attr_put_u8(nlh, IPSET_ATTR_REVISION, revision);
    mnl_attr_put_u8(nlh, IPSET_ATTR_FAMILY, family);
    struct nlattr* data = mnl_attr_nest_start(nlh, IPSET_ATTR_DATA);
    mnl_attr_put_u32(nlh, IPSET_ATTR_CADT_FLAGS | NLA_F_NET_BYTEORDER, htonl(IPSET_FLAG_WITH_COMMENT));
    mnl_attr_nest_end(nlh, data);
    return Exchange(nl, nlh, absl::StrCat("creating ipset ", set), set);
  };
  absl::Status s = create(true);
  if (s.ok()) {
    *created = true;
    return s;
  }
  if (!absl::IsAlreadyExists(s)) return s;
  // It exists: fine when it is the same kind of set.
  s = create(false);
  if (absl::IsAlreadyExists(s)) {
    return absl::FailedPreconditionError(
        absl::StrCat("ipset ", set, " exists but is not a hash:ip set with comments of that family"));
  }
  return s;
}

absl::Status IpsetDestroy(NetlinkSocket& nl, const std::string& set) {
  char buf[kRequestBuffer];
  struct nlmsghdr* nlh = Start(buf, IPSET_CMD_DESTROY, 0, nl.NextSeq(), set);
  absl::Status s = Exchange(nl, nlh, absl::StrCat("destroying ipset ", set), set);
  return absl::IsNotFound(s) ? absl::OkStatus() : s;
}

absl::Status IpsetAdd(NetlinkSocket& nl, const std::string& set, const RawAddress& address,
                      const std::string& comment) {
  char buf[kRequestBuffer];
  // Without NLM_F_EXCL the kernel treats an existing member as "-exist" and
  // updates its comment.
  struct nlmsghdr* nlh = Start(buf, IPSET_CMD_ADD, 0, nl.NextSeq(), set);
  struct nlattr* data = mnl_attr_nest_start(nlh, IPSET_ATTR_DATA);
  PutAddress(nlh, address);
  mnl_attr_put_strz(nlh, IPSET_ATTR_COMMENT, comment.c_str());
  mnl_attr_nest_end(nlh, data);
  return Exchange(nl, nlh, absl::StrCat("adding a probe address to ipset ", set), set);
}

absl::Status IpsetDel(NetlinkSocket& nl, const std::string& set, const RawAddress& address) {
  char buf[kRequestBuffer];
  struct nlmsghdr* nlh = Start(buf, IPSET_CMD_DEL, 0, nl.NextSeq(), set);
  struct nlattr* data = mnl_attr_nest_start(nlh, IPSET_ATTR_DATA);
  PutAddress(nlh, address);
  mnl_attr_nest_end(nlh, data);
  return Exchange(nl, nlh, absl::StrCat("removing a probe address from ipset ", set), set);
}

absl::StatusOr<std::vector<SetMember>> IpsetList(NetlinkSocket& nl, const std::string& set) {
  char buf[kRequestBuffer];
  struct nlmsghdr* nlh = Start(buf, IPSET_CMD_LIST, NLM_F_DUMP, nl.NextSeq(), set);
  std::vector<SetMember> members;
  absl::Status s = nl.Dump(nlh, nlh->nlmsg_len, nlh->nlmsg_seq, [&](const struct nlmsghdr* h) {
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nfgenmsg))) return absl::OkStatus();
    ForEach(mnl_nlmsg_get_payload_offset(h, sizeof(struct nfgenmsg)), mnl_nlmsg_get_payload_tail(h),
            [&](const struct nlattr* attr) {
              if (mnl_attr_get_type(attr) != IPSET_ATTR_ADT) return;
              ForEachNested(attr, [&](const struct nlattr* data) {
                if (mnl_attr_get_type(data) != IPSET_ATTR_DATA) return;
                SetMember m;
                if (Member(data, &m)) members.push_back(std::move(m));
              });
            });
    return absl::OkStatus();
  });
  if (!s.ok()) {
    if (absl::IsNotFound(s)) {
      return absl::NotFoundError(absl::StrCat("listing ipset ", set, ": there is no such set"));
    }
    return s;
  }
  return members;
}

}  // namespace ambient::redirect::internal
