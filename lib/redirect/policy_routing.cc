#include "redirect/policy_routing.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "ambient/base/errno_status.h"
#include "ambient/redirect/config.h"

namespace ambient::redirect::internal {
namespace {

constexpr uint32_t kLoopbackIfindex = 1;  // lo is ifindex 1 in every namespace

enum class Piece { kRouteV4, kRouteV6, kRuleV4, kRuleV6 };

struct Request {
  Piece piece;
  uint32_t seq;
};

bool IsV6(Piece p) { return p == Piece::kRouteV6 || p == Piece::kRuleV6; }
bool IsRule(Piece p) { return p == Piece::kRuleV4 || p == Piece::kRuleV6; }

const char* Name(Piece p) {
  switch (p) {
    case Piece::kRouteV4: return "local default route in table 100 (IPv4)";
    case Piece::kRouteV6: return "local default route in table 100 (IPv6)";
    case Piece::kRuleV4: return "fwmark 0x111/0xfff rule (IPv4)";
    case Piece::kRuleV6: return "fwmark 0x111/0xfff rule (IPv6)";
  }
  return "";
}

bool& Field(RoutingState& s, Piece p) {
  switch (p) {
    case Piece::kRouteV4: return s.route_v4;
    case Piece::kRouteV6: return s.route_v6;
    case Piece::kRuleV4: return s.rule_v4;
    case Piece::kRuleV6: return s.rule_v6;
  }
  return s.rule_v4;
}

// Put appends one request for `p` to `buf` at `*off`.
void Put(char* buf, size_t* off, Piece p, uint16_t type, uint16_t flags, uint32_t seq) {
  struct nlmsghdr* nlh = mnl_nlmsg_put_header(buf + *off);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
  nlh->nlmsg_seq = seq;
  const uint8_t family = IsV6(p) ? AF_INET6 : AF_INET;
  if (IsRule(p)) {
    auto* frh = static_cast<struct fib_rule_hdr*>(
        mnl_nlmsg_put_extra_header(nlh, sizeof(struct fib_rule_hdr)));
    frh->family = family;
    frh->table = static_cast<uint8_t>(kRouteTable);
    frh->action = FR_ACT_TO_TBL;
    mnl_attr_put_u32(nlh, FRA_PRIORITY, kRulePriority);
    mnl_attr_put_u32(nlh, FRA_FWMARK, kInpodTproxyMark);
    mnl_attr_put_u32(nlh, FRA_FWMASK, kInpodTproxyMask);
    mnl_attr_put_u32(nlh, FRA_TABLE, kRouteTable);
  } else {
    auto* rtm = static_cast<struct rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(struct rtmsg)));
    rtm->rtm_family = family;
    rtm->rtm_table = static_cast<uint8_t>(kRouteTable);
    rtm->rtm_protocol = RTPROT_BOOT;
    rtm->rtm_scope = RT_SCOPE_HOST;
    rtm->rtm_type = RTN_LOCAL;
    mnl_attr_put_u32(nlh, RTA_TABLE, kRouteTable);
    mnl_attr_put_u32(nlh, RTA_OIF, kLoopbackIfindex);
  }
  *off += nlh->nlmsg_len;
}

// Exchange sends `pieces` as one datagram of `type` requests and returns the
// errno (0 on success) of each, in order.
absl::StatusOr<std::vector<int>> Exchange(NetlinkSocket& nl, const std::vector<Piece>& pieces,
                                          bool add, uint16_t add_flags) {
  std::vector<int> result(pieces.size(), 0);
  if (pieces.empty()) return result;
  char buf[4096];
  size_t off = 0;
  std::vector<Request> reqs;
  size_t last_off = 0;
  for (Piece p : pieces) {
    uint16_t type = IsRule(p) ? (add ? RTM_NEWRULE : RTM_DELRULE)
                              : (add ? RTM_NEWROUTE : RTM_DELROUTE);
    uint32_t seq = nl.NextSeq();
    last_off = off;
    Put(buf, &off, p, type, add ? add_flags : 0, seq);
    reqs.push_back({p, seq});
  }
  // Only the last request asks for an ack: the kernel answers every failing
  // request anyway, and requests are handled in order, so the last ack
  // closes the exchange (one read instead of one per request).
  reinterpret_cast<struct nlmsghdr*>(buf + last_off)->nlmsg_flags |= NLM_F_ACK;
  if (absl::Status s = nl.Send(buf, off); !s.ok()) return s;
  absl::StatusOr<std::vector<Ack>> acks = nl.CollectAcks(reqs.back().seq);
  if (!acks.ok()) return acks.status();
  for (const Ack& a : *acks) {
    for (size_t i = 0; i < reqs.size(); ++i) {
      if (reqs[i].seq == a.seq) result[i] = -a.error;
    }
  }
  return result;
}

const struct nlattr* FirstAttr(const struct nlmsghdr* h, size_t extra) {
  return static_cast<const struct nlattr*>(mnl_nlmsg_get_payload_offset(h, extra));
}

int AttrRoom(const struct nlmsghdr* h, const struct nlattr* attr) {
  return static_cast<int>(static_cast<const char*>(mnl_nlmsg_get_payload_tail(h)) -
                          reinterpret_cast<const char*>(attr));
}

// SnapshotRoute dumps the routes of `p`'s family and returns the one holding
// our key in table 100 (default destination, TOS 0, the metric ours gets:
// 0 for IPv4, 1024 for IPv6), as the kernel spelt it; "" when there is none.
absl::StatusOr<std::string> SnapshotRoute(NetlinkSocket& nl, Piece p) {
  const bool v6 = IsV6(p);
  const uint32_t want_metric = v6 ? 1024 : 0;
  char buf[256];
  struct nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_GETROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = nl.NextSeq();
  auto* req = static_cast<struct rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(struct rtmsg)));
  req->rtm_family = v6 ? AF_INET6 : AF_INET;
  std::string found;
  absl::Status s = nl.Dump(buf, nlh->nlmsg_len, nlh->nlmsg_seq, [&](const struct nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWROUTE || !found.empty()) return absl::OkStatus();
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct rtmsg))) return absl::OkStatus();
    const auto* r = static_cast<const struct rtmsg*>(mnl_nlmsg_get_payload(h));
    uint32_t table = r->rtm_table, metric = 0;
    for (const struct nlattr* attr = FirstAttr(h, sizeof(*r));
         mnl_attr_ok(attr, AttrRoom(h, attr)); attr = mnl_attr_next(attr)) {
      switch (mnl_attr_get_type(attr)) {
        case RTA_TABLE: table = mnl_attr_get_u32(attr); break;
        case RTA_PRIORITY: metric = mnl_attr_get_u32(attr); break;
        default: break;
      }
    }
    if (r->rtm_family == (v6 ? AF_INET6 : AF_INET) && table == kRouteTable &&
        r->rtm_dst_len == 0 && r->rtm_tos == 0 && metric == want_metric) {
      found.assign(reinterpret_cast<const char*>(h), h->nlmsg_len);
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return found;
}

// RestoreRoutes puts back routes dumped by SnapshotRoute (replacing
// whatever holds their key now).
absl::Status RestoreRoutes(NetlinkSocket& nl, const std::vector<std::string>& routes) {
  for (const std::string& saved : routes) {
    std::string msg = saved;
    auto* nlh = reinterpret_cast<struct nlmsghdr*>(msg.data());
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    nlh->nlmsg_pid = 0;
    nlh->nlmsg_seq = nl.NextSeq();
    if (absl::Status s = nl.Send(msg.data(), msg.size()); !s.ok()) return s;
    absl::StatusOr<std::vector<Ack>> acks = nl.CollectAcks(nlh->nlmsg_seq);
    if (!acks.ok()) return acks.status();
    for (const Ack& a : *acks) {
      if (a.error != 0) return ErrnoStatus(-a.error, "restoring a replaced route in table 100");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RoutingState> ReadRouting(NetlinkSocket& nl) {
  RoutingState state;
  char buf[256];
  // Rules of both families.
  {
    struct nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETRULE;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = nl.NextSeq();
    auto* frh = static_cast<struct fib_rule_hdr*>(
        mnl_nlmsg_put_extra_header(nlh, sizeof(struct fib_rule_hdr)));
    frh->family = AF_UNSPEC;
    int v4 = 0, v6 = 0;
    absl::Status s = nl.Dump(buf, nlh->nlmsg_len, nlh->nlmsg_seq, [&](const struct nlmsghdr* h) {
      if (h->nlmsg_type != RTM_NEWRULE) return absl::OkStatus();
      const auto* hdr = static_cast<const struct fib_rule_hdr*>(mnl_nlmsg_get_payload(h));
      uint32_t prio = 0, mark = 0, mask = 0, table = hdr->table;
      bool has_mark = false;
      for (const struct nlattr* attr = FirstAttr(h, sizeof(*hdr));
           mnl_attr_ok(attr, AttrRoom(h, attr)); attr = mnl_attr_next(attr)) {
        switch (mnl_attr_get_type(attr)) {
          case FRA_PRIORITY: prio = mnl_attr_get_u32(attr); break;
          case FRA_FWMARK: mark = mnl_attr_get_u32(attr); has_mark = true; break;
          case FRA_FWMASK: mask = mnl_attr_get_u32(attr); break;
          case FRA_TABLE: table = mnl_attr_get_u32(attr); break;
          default: break;
        }
      }
      if (hdr->action == FR_ACT_TO_TBL && has_mark && prio == kRulePriority &&
          mark == kInpodTproxyMark && mask == kInpodTproxyMask && table == kRouteTable) {
        (hdr->family == AF_INET6 ? v6 : v4)++;
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    state.rule_v4 = v4 > 0;
    state.rule_v6 = v6 > 0;
    state.extra_rules = (v4 > 1 ? v4 - 1 : 0) + (v6 > 1 ? v6 - 1 : 0);
  }
  // Routes of both families.
  {
    struct nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETROUTE;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = nl.NextSeq();
    auto* rtm = static_cast<struct rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(struct rtmsg)));
    rtm->rtm_family = AF_UNSPEC;
    absl::Status s = nl.Dump(buf, nlh->nlmsg_len, nlh->nlmsg_seq, [&](const struct nlmsghdr* h) {
      if (h->nlmsg_type != RTM_NEWROUTE) return absl::OkStatus();
      const auto* r = static_cast<const struct rtmsg*>(mnl_nlmsg_get_payload(h));
      uint32_t table = r->rtm_table, oif = 0;
      for (const struct nlattr* attr = FirstAttr(h, sizeof(*r));
           mnl_attr_ok(attr, AttrRoom(h, attr)); attr = mnl_attr_next(attr)) {
        switch (mnl_attr_get_type(attr)) {
          case RTA_TABLE: table = mnl_attr_get_u32(attr); break;
          case RTA_OIF: oif = mnl_attr_get_u32(attr); break;
          default: break;
        }
      }
      if (table == kRouteTable && r->rtm_dst_len == 0 && r->rtm_type == RTN_LOCAL &&
          oif == kLoopbackIfindex) {
        (r->rtm_family == AF_INET6 ? state.route_v6 : state.route_v4) = true;
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
  }
  return state;
}

absl::Status DeleteRouting(NetlinkSocket& nl, const RoutingState& which) {
  std::vector<Piece> pieces;
  if (which.rule_v4) pieces.push_back(Piece::kRuleV4);
  if (which.rule_v6) pieces.push_back(Piece::kRuleV6);
  if (which.route_v4) pieces.push_back(Piece::kRouteV4);
  if (which.route_v6) pieces.push_back(Piece::kRouteV6);
  absl::StatusOr<std::vector<int>> errs = Exchange(nl, pieces, /*add=*/false, 0);
  if (!errs.ok()) return errs.status();
  for (size_t i = 0; i < pieces.size(); ++i) {
    int e = (*errs)[i];
    if (e != 0 && e != ENOENT && e != ESRCH && e != EAFNOSUPPORT && e != ENODEV) {
      return ErrnoStatus(e, absl::StrCat("removing the ", Name(pieces[i])));
    }
  }
  return absl::OkStatus();
}

absl::Status AddRouting(NetlinkSocket& nl, bool with_v6, RoutingState* created) {
  *created = RoutingState{};
  std::vector<Piece> pieces = {Piece::kRouteV4};
  if (with_v6) pieces.push_back(Piece::kRouteV6);
  pieces.push_back(Piece::kRuleV4);
  if (with_v6) pieces.push_back(Piece::kRuleV6);
  absl::StatusOr<std::vector<int>> errs =
      Exchange(nl, pieces, /*add=*/true, NLM_F_CREATE | NLM_F_EXCL);
  if (!errs.ok()) return errs.status();
  absl::Status failure = absl::OkStatus();
  std::vector<Piece> replace;
  for (size_t i = 0; i < pieces.size(); ++i) {
    int e = (*errs)[i];
    if (e == 0) {
      Field(*created, pieces[i]) = true;
    } else if (e == EEXIST) {
      // An identical rule is kept; a route with our key is made ours.
      if (!IsRule(pieces[i])) replace.push_back(pieces[i]);
    } else if (failure.ok()) {
      failure = ErrnoStatus(e, absl::StrCat("adding the ", Name(pieces[i]),
                                            e == ENETDOWN ? " (lo is down in the namespace)" : ""));
    }
  }
  std::vector<std::string> replaced;
  if (failure.ok() && !replace.empty()) {
    // Keep what is replaced, so a failure (here or later in Apply) can put
    // it back.
    for (Piece p : replace) {
      absl::StatusOr<std::string> old = SnapshotRoute(nl, p);
      if (!old.ok()) {
        failure = old.status();
        break;
      }
      if (!old->empty()) replaced.push_back(*std::move(old));
    }
  }
  if (failure.ok() && !replace.empty()) {
    absl::StatusOr<std::vector<int>> r =
        Exchange(nl, replace, /*add=*/true, NLM_F_CREATE | NLM_F_REPLACE);
    if (!r.ok()) {
      failure = r.status();
    } else {
      for (size_t i = 0; i < replace.size() && failure.ok(); ++i) {
        if ((*r)[i] != 0) failure = ErrnoStatus((*r)[i], absl::StrCat("replacing the ", Name(replace[i])));
      }
    }
  }
  created->replaced = std::move(replaced);
  if (!failure.ok()) {
    UndoRouting(nl, *created).IgnoreError();
    *created = RoutingState{};
  }
  return failure;
}

absl::Status UndoRouting(NetlinkSocket& nl, const RoutingState& created) {
  absl::Status s = DeleteRouting(nl, created);
  absl::Status r = RestoreRoutes(nl, created.replaced);
  return s.ok() ? r : s;
}

std::vector<std::string> RoutingDrift(const RoutingState& have, bool with_v6) {
  std::vector<std::string> out;
  if (!have.route_v4) out.push_back(Name(Piece::kRouteV4));
  if (!have.rule_v4) out.push_back(Name(Piece::kRuleV4));
  if (with_v6 && !have.route_v6) out.push_back(Name(Piece::kRouteV6));
  if (with_v6 && !have.rule_v6) out.push_back(Name(Piece::kRuleV6));
  return out;
}

}  // namespace ambient::redirect::internal
