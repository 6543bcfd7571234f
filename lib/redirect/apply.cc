#include "ambient/redirect/apply.h"

#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ambient/base/errno_status.h"
#include "ambient/base/status.h"
#include "ambient/redirect/render.h"
#include "ambient/redirect/rules.h"
#include "redirect/ipset_netlink.h"
#include "redirect/iptables_backend.h"
#include "redirect/netlink.h"
#include "redirect/nft_native.h"
#include "redirect/policy_routing.h"

namespace ambient::redirect {
namespace {

using internal::NetlinkSocket;
using internal::RoutingState;

// Sockets made inside the pod namespace in one entry, plus what was learnt
// there.
struct PodSockets {
  std::optional<NetlinkSocket> nft;
  std::optional<NetlinkSocket> route;
  bool ipv6_on_lo = true;
};

absl::StatusOr<PodSockets> OpenSockets(const netns::Netns& ns, bool nft, bool route,
                                       bool want_ipv6 = true) {
  netns::UniqueFd nft_fd, route_fd;
  bool ipv6_on_lo = true;
  absl::Status s = netns::RunIn(ns, [&]() -> absl::Status {
    if (nft) {
      nft_fd.reset(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
      if (!nft_fd.valid()) return ErrnoStatus(errno, "opening an nfnetlink socket");
    }
    if (route) {
      route_fd.reset(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
      if (!route_fd.valid()) return ErrnoStatus(errno, "opening an rtnetlink socket");
      // Like istio-cni: no IPv6 route when IPv6 is off on lo (or absent).
      if (!want_ipv6) return absl::OkStatus();
      int fd = open("/proc/sys/net/ipv6/conf/lo/disable_ipv6", O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        ipv6_on_lo = false;
      } else {
        char c = '0';
        if (read(fd, &c, 1) == 1 && c == '1') ipv6_on_lo = false;
        close(fd);
      }
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  PodSockets out;
  out.ipv6_on_lo = ipv6_on_lo;
  if (nft) {
    absl::StatusOr<NetlinkSocket> n = NetlinkSocket::Adopt(std::move(nft_fd));
    if (!n.ok()) return n.status();
    out.nft.emplace(*std::move(n));
  }
  if (route) {
    absl::StatusOr<NetlinkSocket> r = NetlinkSocket::Adopt(std::move(route_fd));
    if (!r.ok()) return r.status();
    out.route.emplace(*std::move(r));
  }
  return out;
}

absl::Status Fault(const ApplyOptions& options, absl::string_view stage) {
  if (!options.fault_injector) return absl::OkStatus();
  absl::Status s = options.fault_injector(stage);
  if (!s.ok()) return Prefixed(absl::StrCat("injected failure at ", stage), s);
  return absl::OkStatus();
}

std::vector<IpFamily> Families(const internal::IptablesTools& tools) {
  std::vector<IpFamily> out = {IpFamily::kIPv4};
  if (!tools.restore6.empty()) out.push_back(IpFamily::kIPv6);
  return out;
}

// Host iptables rules match the probe ipsets, which must exist first. The
// sets this call made are recorded in `created`, for rollback.
absl::Status EnsureIpsets(internal::NetlinkSocket& nl, bool ipv6, std::vector<std::string>* created) {
  for (bool v6 : {false, true}) {
    if (v6 && !ipv6) break;
    const std::string name = v6 ? kProbeSetV6 : kProbeSetV4;
    bool made = false;
    if (absl::Status s = internal::IpsetCreate(nl, name, v6, &made); !s.ok()) return s;
    if (made) created->push_back(name);
  }
  return absl::OkStatus();
}

void DestroyIpsets(internal::NetlinkSocket& nl, const std::vector<std::string>& sets) {
  for (const std::string& set : sets) internal::IpsetDestroy(nl, set).IgnoreError();
}

absl::Status ApplyIptables(const Config& config, const netns::Netns& ns,
                           const ApplyOptions& options) {
  absl::StatusOr<std::vector<IptRuleset>> sets = BuildIptables(config);
  if (!sets.ok()) return sets.status();
  absl::StatusOr<internal::IptablesTools> tools = internal::Tools(options.iptables_variant);
  if (!tools.ok()) return tools.status();
  if (config.ipv6 && tools->restore6.empty()) {
    return absl::NotFoundError("IPv6 rules requested but ip6tables-restore is not installed");
  }
  const std::set<std::string> ours = internal::OurChains(config.host);
  // Snapshot every family first, so a failure anywhere can be undone.
  std::vector<internal::IptState> before;
  for (const IptRuleset& rs : *sets) {
    absl::StatusOr<internal::IptState> st = internal::ReadState(*tools, rs.family, ns, ours);
    if (!st.ok()) return st.status();
    before.push_back(*std::move(st));
  }
  absl::StatusOr<PodSockets> sockets =
      OpenSockets(ns, !tools->legacy || config.host, !config.host, config.ipv6);
  if (!sockets.ok()) return sockets.status();
  std::vector<std::string> created_sets;
  if (config.host) {
    if (absl::Status s = EnsureIpsets(*sockets->nft, config.ipv6, &created_sets); !s.ok()) {
      DestroyIpsets(*sockets->nft, created_sets);
      return s;
    }
  }
  // iptables-nft creates the ip/ip6 tables it touches; a rollback removes
  // those that did not exist before, so the namespace is as it was.
  std::set<std::string> tables_v4, tables_v6;
  if (!tools->legacy) {
    absl::StatusOr<std::set<std::string>> t4 = internal::NftTables(*sockets->nft, NFPROTO_IPV4);
    absl::StatusOr<std::set<std::string>> t6 = internal::NftTables(*sockets->nft, NFPROTO_IPV6);
    if (!t4.ok()) return t4.status();
    if (!t6.ok()) return t6.status();
    tables_v4 = *std::move(t4);
    tables_v6 = *std::move(t6);
  }
  RoutingState created;
  if (!config.host) {
    absl::Status s = internal::AddRouting(*sockets->route, config.ipv6 && sockets->ipv6_on_lo, &created);
    if (!s.ok()) return s;
  }
  auto undo_routing = [&] {
    if (!config.host) internal::UndoRouting(*sockets->route, created).IgnoreError();
  };
  auto undo_new_tables = [&] {
    if (tools->legacy) return;
    for (auto [family, before_tables] : {std::pair<uint8_t, const std::set<std::string>*>{NFPROTO_IPV4, &tables_v4},
                                         {NFPROTO_IPV6, &tables_v6}}) {
      absl::StatusOr<std::set<std::string>> now = internal::NftTables(*sockets->nft, family);
      if (!now.ok()) continue;
      std::vector<std::string> added;
      for (const std::string& t : *now) {
        if (!before_tables->count(t) && (t == "mangle" || t == "nat" || t == "raw")) added.push_back(t);
      }
      if (!added.empty()) internal::NftDelete(*sockets->nft, added, family).IgnoreError();
    }
  };
  if (absl::Status s = Fault(options, "routing"); !s.ok()) {
    undo_routing();
    DestroyIpsets(*sockets->nft, created_sets);
    return s;
  }
  for (size_t i = 0; i < sets->size(); ++i) {
    const IptRuleset& rs = (*sets)[i];
    absl::Status s = Fault(options, rs.family == IpFamily::kIPv4 ? "iptables-ipv4" : "iptables-ipv6");
    if (s.ok()) {
      const internal::IptState want = internal::Expected(rs);
      std::vector<Drift> drift;
      internal::DiffState(rs.family, want, before[i], &drift);
      if (before[i].empty()) {
        s = internal::Restore(*tools, rs.family, ns, RenderIptables(rs));  // istio's own payload
      } else if (!drift.empty()) {
        s = internal::Restore(*tools, rs.family, ns,
                              internal::ReconcilePayload(before[i], want, internal::TargetLines(rs)));
      }
    }
    if (!s.ok()) {
      // Put back every family touched so far, this one included (a restore
      // commits table by table).
      for (size_t j = 0; j <= i; ++j) {
        IpFamily fam = (*sets)[j].family;
        absl::StatusOr<internal::IptState> now = internal::ReadState(*tools, fam, ns, ours);
        if (!now.ok()) continue;
        if (!now->empty() || !before[j].empty()) {
          internal::Restore(*tools, fam, ns,
                            internal::ReconcilePayload(*now, before[j], internal::SnapshotLines(before[j])))
              .IgnoreError();
        }
      }
      undo_new_tables();
      undo_routing();
      DestroyIpsets(*sockets->nft, created_sets);
      return s;
    }
  }
  return absl::OkStatus();
}

// SameRules reports whether two configs give the same rules (every field of
// Config; keep in step with config.h).
bool SameRules(const Config& a, const Config& b) {
  return a.backend == b.backend && a.host == b.host && a.ipv6 == b.ipv6 &&
         a.dns_capture == b.dns_capture && a.pod_dns_capture == b.pod_dns_capture &&
         a.bypass_inbound == b.bypass_inbound && a.reroute_interfaces == b.reroute_interfaces &&
         a.probe_snat_v4 == b.probe_snat_v4 && a.probe_snat_v6 == b.probe_snat_v6 &&
         a.kubelet_uid == b.kubelet_uid;
}

// The encoded nftables batches of the last few in-pod configs. A node agent
// applies one config to every pod, so the rules are built and encoded once
// rather than per pod; the bytes are the same either way.
class BatchCache {
 public:
  std::shared_ptr<const internal::EncodedBatch> Find(const Config& config) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [c, batch] : entries_) {
      if (SameRules(c, config)) return batch;
    }
    return nullptr;
  }
  void Put(const Config& config, std::shared_ptr<const internal::EncodedBatch> batch) {
    std::lock_guard<std::mutex> lock(mu_);
    if (entries_.size() == kEntries) entries_.erase(entries_.begin());
    entries_.emplace_back(config, std::move(batch));
  }

 private:
  static constexpr size_t kEntries = 8;
  std::mutex mu_;
  std::vector<std::pair<Config, std::shared_ptr<const internal::EncodedBatch>>> entries_;
};

BatchCache& Batches() {
  static BatchCache* cache = new BatchCache;
  return *cache;
}

// ApplyBatch returns the encoded apply batch of `config`: from the cache for
// in-pod rules (host rules may look the kubelet up in /proc, so they are
// built every time), freshly built for tests that inject a bad request.
absl::StatusOr<std::shared_ptr<const internal::EncodedBatch>> ApplyBatch(
    const Config& config, const ApplyOptions& options) {
  const bool cacheable = !config.host && !options.nft_inject_bad_request;
  if (cacheable) {
    if (std::shared_ptr<const internal::EncodedBatch> hit = Batches().Find(config)) return hit;
  }
  absl::StatusOr<NftRuleset> rs = BuildNftables(config);
  if (!rs.ok()) return rs.status();
  absl::StatusOr<internal::EncodedBatch> batch =
      internal::NftEncodeApply(*rs, options.nft_inject_bad_request);
  if (!batch.ok()) return batch.status();
  auto out = std::make_shared<const internal::EncodedBatch>(*std::move(batch));
  if (cacheable) Batches().Put(config, out);
  return out;
}

// OtherBackendInstalled refuses to apply `config` where the other backend's
// rules are installed already: both would capture the same traffic. The
// iptables rules are seen when iptables is iptables-nft (Debian's default:
// its chains are nftables chains of family ip/ip6); ours in nftables are our
// inet tables.
absl::Status OtherBackendInstalled(const Config& config, const netns::Netns& ns,
                                   NetlinkSocket& nft) {
  const std::string where = absl::StrCat("network namespace ", ns.id().ToString());
  const char* hint = config.backend == Backend::kNftables ? "iptables" : "nftables";
  if (config.backend == Backend::kIptables) {
    absl::StatusOr<std::set<std::string>> tables = internal::NftTables(nft, NFPROTO_INET);
    if (!tables.ok()) return tables.status();
    for (const char* t : {kNftNatTable, kNftMangleTable, kNftRawTable}) {
      if (tables->count(t) == 0) continue;
      return absl::FailedPreconditionError(absl::StrCat(
          where, " already has the redirect rules of the nftables backend (table inet ", t,
          "): remove them first (`ambientctl rules delete --backend ", hint,
          "`), or both would capture the same traffic"));
    }
    return absl::OkStatus();
  }
  for (uint8_t family : {uint8_t{NFPROTO_IPV4}, uint8_t{NFPROTO_IPV6}}) {
    absl::StatusOr<std::set<std::string>> chains = internal::NftChains(nft, family);
    if (!chains.ok()) return chains.status();
    for (const std::string& c : *chains) {
      if (c.find("/ISTIO_") == std::string::npos) continue;
      return absl::FailedPreconditionError(absl::StrCat(
          where, " already has the redirect rules of the iptables backend (chain ", c,
          "): remove them first (`ambientctl rules delete --backend ", hint,
          "`), or both would capture the same traffic"));
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyNftables(const Config& config, const netns::Netns& ns,
                           const ApplyOptions& options) {
  absl::StatusOr<std::shared_ptr<const internal::EncodedBatch>> batch = ApplyBatch(config, options);
  if (!batch.ok()) return batch.status();
  absl::StatusOr<PodSockets> sockets = OpenSockets(ns, true, !config.host, config.ipv6);
  if (!sockets.ok()) return sockets.status();
  if (absl::Status s = OtherBackendInstalled(config, ns, *sockets->nft); !s.ok()) return s;
  RoutingState created;
  if (!config.host) {
    absl::Status s = internal::AddRouting(*sockets->route, config.ipv6 && sockets->ipv6_on_lo, &created);
    if (!s.ok()) return s;
  }
  absl::Status s = Fault(options, "routing");
  if (s.ok()) s = Fault(options, "nftables");
  if (s.ok()) s = internal::NftSend(*sockets->nft, **batch, internal::kApplyFailed);
  if (!s.ok() && !config.host) internal::UndoRouting(*sockets->route, created).IgnoreError();
  return s;
}

}  // namespace

absl::Status Apply(const Config& config, const netns::Netns& ns, const ApplyOptions& options) {
  if (absl::Status s = Validate(config); !s.ok()) return s;
  if (!ns.valid()) return absl::InvalidArgumentError("no network namespace");
  if (config.backend == Backend::kNftables) return ApplyNftables(config, ns, options);
  absl::StatusOr<PodSockets> sockets = OpenSockets(ns, true, false);
  if (!sockets.ok()) return sockets.status();
  if (absl::Status s = OtherBackendInstalled(config, ns, *sockets->nft); !s.ok()) return s;
  return ApplyIptables(config, ns, options);
}

absl::StatusOr<std::vector<Drift>> Check(const Config& config, const netns::Netns& ns,
                                         const ApplyOptions& options) {
  if (absl::Status s = Validate(config); !s.ok()) return s;
  if (!ns.valid()) return absl::InvalidArgumentError("no network namespace");
  const bool nft = config.backend == Backend::kNftables;
  absl::StatusOr<PodSockets> sockets = OpenSockets(ns, nft || config.host, !config.host);
  if (!sockets.ok()) return sockets.status();
  std::vector<Drift> out;
  if (!nft && config.host) {
    // The host rules match the probe ipsets; without them iptables-restore
    // could not even load the rules.
    for (bool v6 : {false, true}) {
      if (v6 && !config.ipv6) break;
      const std::string set = v6 ? kProbeSetV6 : kProbeSetV4;
      absl::StatusOr<std::vector<internal::SetMember>> members = internal::IpsetList(*sockets->nft, set);
      if (absl::IsNotFound(members.status())) {
        out.push_back({Drift::Kind::kMissing, "ipset", set});
      } else if (!members.ok()) {
        return members.status();
      }
    }
  }
  if (nft) {
    absl::StatusOr<NftRuleset> rs = BuildNftables(config);
    if (!rs.ok()) return rs.status();
    absl::StatusOr<std::vector<Drift>> d = internal::NftCheck(*sockets->nft, *rs);
    if (!d.ok()) return d.status();
    out = *std::move(d);
  } else {
    absl::StatusOr<std::vector<IptRuleset>> sets = BuildIptables(config);
    if (!sets.ok()) return sets.status();
    absl::StatusOr<internal::IptablesTools> tools = internal::Tools(options.iptables_variant);
    if (!tools.ok()) return tools.status();
    for (const IptRuleset& rs : *sets) {
      absl::StatusOr<internal::IptState> have =
          internal::ReadState(*tools, rs.family, ns, internal::OurChains(config.host));
      if (!have.ok()) return have.status();
      internal::DiffState(rs.family, internal::Expected(rs), *have, &out);
    }
  }
  if (!config.host) {
    absl::StatusOr<RoutingState> routing = internal::ReadRouting(*sockets->route);
    if (!routing.ok()) return routing.status();
    for (const std::string& what :
         internal::RoutingDrift(*routing, config.ipv6 && sockets->ipv6_on_lo)) {
      out.push_back({Drift::Kind::kMissing, "policy routing", what});
    }
    if (routing->extra_rules > 0) {
      out.push_back({Drift::Kind::kExtra, "policy routing",
                     absl::StrCat(routing->extra_rules, " duplicate fwmark 0x111/0xfff rule(s)")});
    }
  }
  return out;
}

absl::Status Delete(const Config& config, const netns::Netns& ns, const ApplyOptions& options) {
  if (absl::Status s = Validate(config); !s.ok()) return s;
  if (!ns.valid()) return absl::InvalidArgumentError("no network namespace");
  const bool nft = config.backend == Backend::kNftables;
  absl::StatusOr<PodSockets> sockets = OpenSockets(ns, nft, !config.host);
  if (!sockets.ok()) return sockets.status();
  if (nft) {
    std::vector<std::string> tables = {kNftNatTable};
    if (!config.host) {
      tables.push_back(kNftMangleTable);
      tables.push_back(kNftRawTable);
    }
    if (absl::Status s = internal::NftDelete(*sockets->nft, tables); !s.ok()) return s;
  } else {
    absl::StatusOr<internal::IptablesTools> tools = internal::Tools(options.iptables_variant);
    if (!tools.ok()) return tools.status();
    const std::set<std::string> ours = internal::OurChains(config.host);
    for (IpFamily family : Families(*tools)) {
      absl::StatusOr<internal::IptState> have = internal::ReadState(*tools, family, ns, ours);
      if (!have.ok()) return have.status();
      if (have->empty()) continue;
      absl::Status s = internal::Restore(*tools, family, ns,
                                         internal::ReconcilePayload(*have, internal::IptState{}, {}));
      if (!s.ok()) return s;
    }
  }
  if (!config.host) {
    RoutingState all;
    all.rule_v4 = all.rule_v6 = all.route_v4 = all.route_v6 = true;
    if (absl::Status s = internal::DeleteRouting(*sockets->route, all); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace ambient::redirect
