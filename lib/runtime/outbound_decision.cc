#include "ambient/runtime/outbound_decision.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"

namespace ambient::runtime {
namespace {

using Mode = LoadBalancing::Mode;
using Scope = LoadBalancing::Scope;

uint64_t DefaultRandom(uint64_t n) {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return std::uniform_int_distribution<uint64_t>(0, n - 1)(gen);
}

// Chosen is a chosen workload and port (ztunnel's Upstream).
struct Chosen {
  const Workload* workload = nullptr;
  uint16_t port = 0;
  const Service* service = nullptr;  // set when chosen from a service
};

// Resolution: kStandard for user traffic, kWaypoint when resolving a
// waypoint service (its port is not the user's).
enum class Resolution { kStandard, kWaypoint };

bool ScopeMatches(Scope s, const Workload& src, const Workload& wl) {
  switch (s) {
    case Scope::kRegion:
      return src.locality.region == wl.locality.region;
    case Scope::kZone:
      return src.locality.zone == wl.locality.zone;
    case Scope::kSubzone:
      return src.locality.subzone == wl.locality.subzone;
    case Scope::kNode:
      return src.node == wl.node;
    case Scope::kCluster:
      return src.cluster == wl.cluster;
    case Scope::kNetwork:
      return src.network == wl.network;
  }
  return false;
}

// LoadBalance picks an endpoint of `svc` for `svc_port` (ztunnel's
// load_balance), or nullptr.
const Workload* LoadBalance(const WorkloadDirectory::View& dir, const Workload& src,
                            const Service& svc, uint16_t svc_port, Resolution mode,
                            const RandomFn& random) {
  auto port_it = svc.ports.find(svc_port);
  if (mode == Resolution::kStandard && port_it == svc.ports.end()) return nullptr;
  uint16_t svc_target = port_it == svc.ports.end() ? 0 : port_it->second;
  bool allow_unhealthy = svc.load_balancing && svc.load_balancing->allow_unhealthy;
  std::vector<const Workload*> candidates;
  for (const Workload* wl : dir.Endpoints(svc)) {
    if (!wl->healthy && !allow_unhealthy) continue;
    if (wl->addresses.empty()) continue;  // reachable only through a network gateway
    if (mode == Resolution::kStandard && svc_target == 0) {
      auto ep = wl->services.find(svc.Key());
      if (ep == wl->services.end() || ep->second.count(svc_port) == 0) continue;
    }
    if (mode == Resolution::kWaypoint && port_it == svc.ports.end()) continue;
    candidates.push_back(wl);
  }
  const LoadBalancing* lb = svc.load_balancing ? &*svc.load_balancing : nullptr;
  if (lb != nullptr && (lb->mode == Mode::kStrict || lb->mode == Mode::kFailover)) {
    const auto& prefs = lb->routing_preference;
    bool network_first = !prefs.empty() && prefs[0] == Scope::kNetwork;
    std::vector<std::pair<size_t, const Workload*>> ranked;
    for (const Workload* wl : candidates) {
      size_t rank = 0;
      size_t adjust = 0;
      for (Scope s : prefs) {
        bool m = ScopeMatches(s, src, *wl);
        if (s == Scope::kNetwork && network_first) {
          if (!m) continue;  // try the other scopes
          adjust = prefs.size() - 1;
        }
        if (!m) break;
        ++rank;
      }
      if (lb->mode == Mode::kStrict && rank != prefs.size()) continue;
      ranked.emplace_back(rank + adjust, wl);
    }
    size_t best = 0;
    for (const auto& [rank, wl] : ranked) best = std::max(best, rank);
    candidates.clear();
    for (const auto& [rank, wl] : ranked) {
      if (rank == best) candidates.push_back(wl);
    }
  }
  if (candidates.empty()) return nullptr;
  uint64_t total = 0;
  for (const Workload* wl : candidates) total += std::max<uint32_t>(wl->capacity, 1);
  uint64_t pick = random ? random(total) : DefaultRandom(total);
  for (const Workload* wl : candidates) {
    uint64_t w = std::max<uint32_t>(wl->capacity, 1);
    if (pick < w) return wl;
    pick -= w;
  }
  return candidates.back();
}

// FromService is ztunnel's find_upstream_from_service.
std::optional<Chosen> FromService(const WorkloadDirectory::View& dir, const Workload& src,
                                  const Service& svc, uint16_t svc_port, Resolution mode,
                                  const RandomFn& random) {
  const Workload* wl = LoadBalance(dir, src, svc, svc_port, mode, random);
  if (wl == nullptr) return std::nullopt;
  uint16_t target = 0;
  if (auto ep = wl->services.find(svc.Key()); ep != wl->services.end()) {
    if (auto p = ep->second.find(svc_port); p != ep->second.end()) target = p->second;
  }
  if (target == 0) {
    auto p = svc.ports.find(svc_port);
    if (p != svc.ports.end()) target = p->second;
  }
  if (target == 0) return std::nullopt;
  return Chosen{wl, target, &svc};
}

// PickIp is ztunnel's pick_workload_destination: the addressed IP if it is
// the workload's, else one of the target's family, else the first.
std::optional<ambient::IpAddress> PickIp(const Workload& wl, const ambient::IpAddress& target) {
  std::optional<ambient::IpAddress> first;
  std::optional<ambient::IpAddress> same_family;
  for (const std::string& a : wl.addresses) {
    absl::StatusOr<ambient::IpAddress> ip = ambient::IpAddress::Parse(a);
    if (!ip.ok()) continue;
    if (*ip == target) return *ip;
    if (!first) first = *ip;
    if (!same_family && ip->is_v4() == target.is_v4()) same_family = *ip;
  }
  return same_family ? same_family : first;
}

std::vector<identity::SpiffeId> Sans(const Chosen& us) {
  std::vector<identity::SpiffeId> out;
  // The directory holds only valid SANs and identities (Upsert,
  // UpsertService check them), so nothing is dropped here.
  if (us.service != nullptr) {
    for (const std::string& san : us.service->subject_alt_names) {
      if (absl::StatusOr<identity::SpiffeId> id = identity::SpiffeId::Parse(san); id.ok()) {
        out.push_back(*std::move(id));
      }
    }
  }
  if (absl::StatusOr<identity::SpiffeId> id = us.workload->Identity(); id.ok()) {
    out.push_back(*std::move(id));
  }
  return out;
}

absl::Status NoValidDestination(const Workload& w) {
  return absl::UnavailableError(absl::StrCat("no valid routing destination for workload: ", w.ns,
                                             "/", w.name, " (", w.uid, ")"));
}

// Waypoint resolves a GatewayAddress to the waypoint's upstream and the
// address to connect to (ztunnel's fetch_waypoint).
absl::StatusOr<std::pair<Chosen, SocketAddress>> Waypoint(const WorkloadDirectory::View& dir,
                                                          const Workload& src,
                                                          const GatewayAddress& gw,
                                                          const ambient::IpAddress& target_ip,
                                                          const RandomFn& random) {
  std::optional<Chosen> us;
  ambient::IpAddress family_hint = target_ip;
  if (gw.address) {
    family_hint = gw.address->ip;
    if (const Service* s = dir.ServiceByVip(*gw.address, src.ns)) {
      us = FromService(dir, src, *s, gw.hbone_mtls_port, Resolution::kWaypoint, random);
    } else if (const Workload* w = dir.WorkloadByAddress(*gw.address)) {
      us = Chosen{w, gw.hbone_mtls_port, nullptr};
    }
  } else if (const Service* s = dir.ServiceByHostname(gw.hostname_namespace, gw.hostname)) {
    us = FromService(dir, src, *s, gw.hbone_mtls_port, Resolution::kWaypoint, random);
  } else {
    return absl::NotFoundError(
        absl::StrCat("unknown waypoint: waypoint ", gw.hostname, " not found"));
  }
  if (!us) {
    return absl::NotFoundError(
        absl::StrCat("unknown waypoint: waypoint ", gw.ToString(), " not found"));
  }
  std::optional<ambient::IpAddress> ip = PickIp(*us->workload, family_hint);
  if (!ip) return NoValidDestination(*us->workload);
  return std::make_pair(*us, SocketAddress(*ip, us->port));
}

// FromWaypoint is ztunnel's check_from_waypoint: is the source (identity
// and IP) one of the workloads behind `upstream`'s waypoint?
bool FromWaypoint(const WorkloadDirectory::View& dir, const Workload& upstream, const Workload& src,
                  const ambient::IpAddress& src_ip) {
  if (!upstream.waypoint) return false;
  auto is_waypoint = [&](const Workload& wl) {
    if (wl.Identity() != src.Identity()) return false;
    for (const std::string& a : wl.addresses) {
      absl::StatusOr<ambient::IpAddress> ip = ambient::IpAddress::Parse(a);
      if (ip.ok() && *ip == src_ip) return true;
    }
    return false;
  };
  const GatewayAddress& gw = *upstream.waypoint;
  const Service* svc = nullptr;
  if (gw.address) {
    if (const Workload* w = dir.WorkloadByAddress(*gw.address)) return is_waypoint(*w);
    svc = dir.ServiceByVip(*gw.address, src.ns);
  } else {
    svc = dir.ServiceByHostname(gw.hostname_namespace, gw.hostname);
  }
  if (svc == nullptr) return false;
  for (const Workload* w : dir.Endpoints(*svc)) {
    if (is_waypoint(*w)) return true;
  }
  return false;
}

OutboundRoute ToWaypoint(const Chosen& wp, const SocketAddress& wp_addr,
                         const SocketAddress& target, std::string service) {
  OutboundRoute r;
  r.kind = OutboundRoute::Kind::kHbone;
  r.next_hop = wp_addr;
  r.hbone_target = target;
  r.expected_identities = Sans(wp);
  r.destination = *wp.workload;
  r.destination_service = std::move(service);
  r.via_waypoint = true;
  return r;
}

// Decide is DecideOutbound; `at_waypoint`: the source is the waypoint
// itself (DecideAtWaypoint), so no waypoint is taken again.
absl::StatusOr<OutboundRoute> Decide(const WorkloadDirectory::View& dir, const Workload& source,
                                     const SocketAddress& downstream, const SocketAddress& target,
                                     uint16_t hbone_port, const RandomFn& random,
                                     bool at_waypoint) {
  const ambient::IpAddress target_ip = target.ip();
  const uint16_t target_port = static_cast<uint16_t>(target.port());
  const NetworkAddress addr{source.network, target_ip};

  std::optional<Chosen> us;
  const Service* service = dir.ServiceByVip(addr, source.ns);
  if (service != nullptr) {
    if (service->waypoint && !at_waypoint) {
      absl::StatusOr<std::pair<Chosen, SocketAddress>> wp =
          Waypoint(dir, source, *service->waypoint, target_ip, random);
      if (!wp.ok()) return wp.status();
      return ToWaypoint(wp->first, wp->second, target, service->hostname);
    }
    bool passthrough =
        service->load_balancing && service->load_balancing->mode == Mode::kPassthrough;
    if (!passthrough) {
      us = FromService(dir, source, *service, target_port, Resolution::kStandard, random);
      if (!us) {
        return absl::UnavailableError(absl::StrCat("no healthy upstream: ", target.ToString()));
      }
    }
  } else if (const Workload* w = dir.WorkloadByAddress(addr)) {
    us = Chosen{w, target_port, nullptr};
  }

  if (!us) {
    OutboundRoute r;
    r.next_hop = target;
    return r;
  }

  // Workload-addressed traffic to a workload behind a waypoint goes through
  // it, unless it comes from that waypoint.
  if (service == nullptr && us->workload->waypoint && !at_waypoint &&
      !FromWaypoint(dir, *us->workload, source, downstream.ip())) {
    absl::StatusOr<std::pair<Chosen, SocketAddress>> wp =
        Waypoint(dir, source, *us->workload->waypoint, target_ip, random);
    if (!wp.ok()) return wp.status();
    return ToWaypoint(wp->first, wp->second, target, "");
  }

  std::optional<ambient::IpAddress> ip = PickIp(*us->workload, target_ip);
  if (!ip) return NoValidDestination(*us->workload);
  OutboundRoute r;
  r.destination = *us->workload;
  r.destination_service = service != nullptr ? service->hostname : "";
  if (us->workload->hbone) {
    r.kind = OutboundRoute::Kind::kHbone;
    r.next_hop = SocketAddress(*ip, hbone_port);
    r.hbone_target = SocketAddress(*ip, us->port);
    r.expected_identities = Sans(*us);
  } else {
    r.next_hop = SocketAddress(*ip, us->port);
  }
  return r;
}

}  // namespace

absl::StatusOr<OutboundRoute> DecideOutbound(const WorkloadDirectory::View& dir,
                                             const Workload& source,
                                             const SocketAddress& downstream,
                                             const SocketAddress& target, uint16_t hbone_port,
                                             const RandomFn& random) {
  return Decide(dir, source, downstream, target, hbone_port, random, /*at_waypoint=*/false);
}

absl::StatusOr<OutboundRoute> DecideAtWaypoint(const WorkloadDirectory::View& dir,
                                               const Workload& waypoint,
                                               const SocketAddress& target, uint16_t hbone_port,
                                               const RandomFn& random) {
  return Decide(dir, waypoint, SocketAddress(), target, hbone_port, random,
                /*at_waypoint=*/true);
}

}  // namespace ambient::runtime
