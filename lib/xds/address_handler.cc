// istio.workload.Address into the workload directory: ambient/xds/address_handler.h.
#include "ambient/xds/address_handler.h"

#include <map>
#include <optional>
#include <utility>
#include <variant>

#include <google/protobuf/stubs/logging.h>
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "ambient/authz/ip.h"
#include "workload.pb.h"

namespace ambient::xds {
namespace {

namespace wire = ::ambient::wire::istio::workload;

absl::Status Invalid(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

// Ip converts raw address bytes (4 or 16) to the numeric text form.
absl::StatusOr<IpAddress> Ip(absl::string_view where, const std::string& bytes) {
  if (bytes.size() != 4 && bytes.size() != 16) {
    return Invalid(where, absl::StrCat(bytes.size(), " bytes, want 4 (IPv4) or 16 (IPv6)"));
  }
  return IpAddress::FromBytes(bytes);
}

absl::StatusOr<uint16_t> Port(absl::string_view where, uint32_t port) {
  if (port > 65535) return Invalid(where, absl::StrCat("port ", port, " is above 65535"));
  return static_cast<uint16_t>(port);
}

absl::StatusOr<runtime::GatewayAddress> Gateway(absl::string_view where,
                                                const wire::GatewayAddress& g) {
  runtime::GatewayAddress out;
  switch (g.destination_case()) {
    case wire::GatewayAddress::kAddress: {
      absl::StatusOr<IpAddress> ip = Ip(absl::StrCat(where, ".address"), g.address().address());
      if (!ip.ok()) return ip.status();
      out.address = runtime::NetworkAddress{g.address().network(), *ip};
      break;
    }
    case wire::GatewayAddress::kHostname:
      out.hostname_namespace = g.hostname().namespace_();
      out.hostname = g.hostname().hostname();
      break;
    default:
      return Invalid(where, "no destination (address or hostname)");
  }
  absl::StatusOr<uint16_t> port =
      Port(absl::StrCat(where, ".hbone_mtls_port"), g.hbone_mtls_port());
  if (!port.ok()) return port.status();
  out.hbone_mtls_port = *port;  // as given, as ztunnel takes it
  return out;
}

absl::StatusOr<std::map<uint16_t, uint16_t>> Ports(
    absl::string_view where, const google::protobuf::RepeatedPtrField<wire::Port>& ports) {
  std::map<uint16_t, uint16_t> out;
  for (int i = 0; i < ports.size(); ++i) {
    std::string at = absl::StrCat(where, "[", i, "]");
    absl::StatusOr<uint16_t> sp = Port(absl::StrCat(at, ".service_port"), ports[i].service_port());
    if (!sp.ok()) return sp.status();
    absl::StatusOr<uint16_t> tp = Port(absl::StrCat(at, ".target_port"), ports[i].target_port());
    if (!tp.ok()) return tp.status();
    out[*sp] = *tp;  // a repeated service port: the last one wins, as in ztunnel
  }
  return out;
}

absl::StatusOr<runtime::Workload> ConvertWorkload(const wire::Workload& w) {
  runtime::Workload out;
  out.uid = w.uid();
  out.name = w.name();
  out.ns = w.namespace_();
  for (int i = 0; i < w.addresses_size(); ++i) {
    absl::StatusOr<IpAddress> ip = Ip(absl::StrCat("workload addresses[", i, "]"), w.addresses(i));
    if (!ip.ok()) return ip.status();
    out.addresses.push_back(ip->ToString());
  }
  out.network = w.network();
  switch (w.tunnel_protocol()) {
    case wire::NONE:
      out.hbone = false;
      break;
    case wire::HBONE:
      out.hbone = true;
      break;
    case wire::LEGACY_ISTIO_MTLS:
      return Invalid("workload tunnel_protocol", "unsupported tunnel protocol: legacy istio mtls");
    default:
      return Invalid("workload tunnel_protocol",
                     absl::StrCat("unknown value ", w.tunnel_protocol()));
  }
  out.trust_domain = w.trust_domain().empty() ? "cluster.local" : w.trust_domain();
  out.service_account = w.service_account().empty() ? "default" : w.service_account();
  if (w.has_waypoint()) {
    absl::StatusOr<runtime::GatewayAddress> g = Gateway("workload waypoint", w.waypoint());
    if (!g.ok()) return g.status();
    out.waypoint = std::move(*g);
  }
  if (w.has_network_gateway()) {  // checked as ztunnel checks it, not kept
    absl::StatusOr<runtime::GatewayAddress> g =
        Gateway("workload network_gateway", w.network_gateway());
    if (!g.ok()) return g.status();
  }
  if (!wire::NetworkMode_IsValid(w.network_mode())) {
    return Invalid("workload network_mode", absl::StrCat("unknown value ", w.network_mode()));
  }
  if (w.has_application_tunnel() &&
      !wire::ApplicationTunnel::Protocol_IsValid(w.application_tunnel().protocol())) {
    return Invalid("workload application_tunnel.protocol",
                   absl::StrCat("unknown value ", w.application_tunnel().protocol()));
  }
  out.node = w.node();
  out.canonical_service = w.canonical_name();
  out.canonical_revision = w.canonical_revision();
  out.cluster = w.cluster_id().empty() ? "Kubernetes" : w.cluster_id();
  for (const auto& [key, list] : w.services()) {
    std::string where = absl::StrCat("workload services[\"", key, "\"]");
    if (key.find('/') == std::string::npos) {
      return Invalid(where, "key is not \"namespace/hostname\"");
    }
    absl::StatusOr<std::map<uint16_t, uint16_t>> ports = Ports(where, list.ports());
    if (!ports.ok()) return ports.status();
    out.services[key] = std::move(*ports);
  }
  out.policies.assign(w.authorization_policies().begin(), w.authorization_policies().end());
  switch (w.status()) {
    case wire::HEALTHY:
      out.healthy = true;
      break;
    case wire::UNHEALTHY:
      out.healthy = false;
      break;
    default:
      return Invalid("workload status", absl::StrCat("unknown value ", w.status()));
  }
  out.locality = {w.locality().region(), w.locality().zone(), w.locality().subzone()};
  out.capacity = w.has_capacity() ? w.capacity().value() : 1;
  return out;
}

absl::StatusOr<runtime::LoadBalancing> ConvertLoadBalancing(const wire::LoadBalancing& lb) {
  using Scope = runtime::LoadBalancing::Scope;
  using Mode = runtime::LoadBalancing::Mode;
  runtime::LoadBalancing out;
  for (int i = 0; i < lb.routing_preference_size(); ++i) {
    std::string where = absl::StrCat("service load_balancing.routing_preference[", i, "]");
    switch (lb.routing_preference(i)) {
      case wire::LoadBalancing::REGION:
        out.routing_preference.push_back(Scope::kRegion);
        break;
      case wire::LoadBalancing::ZONE:
        out.routing_preference.push_back(Scope::kZone);
        break;
      case wire::LoadBalancing::SUBZONE:
        out.routing_preference.push_back(Scope::kSubzone);
        break;
      case wire::LoadBalancing::NODE:
        out.routing_preference.push_back(Scope::kNode);
        break;
      case wire::LoadBalancing::CLUSTER:
        out.routing_preference.push_back(Scope::kCluster);
        break;
      case wire::LoadBalancing::NETWORK:
        out.routing_preference.push_back(Scope::kNetwork);
        break;
      default:
        return Invalid(where, absl::StrCat("invalid scope ", lb.routing_preference(i)));
    }
  }
  switch (lb.mode()) {
    case wire::LoadBalancing::UNSPECIFIED_MODE:
      out.mode = Mode::kStandard;
      break;
    case wire::LoadBalancing::STRICT:
      out.mode = Mode::kStrict;
      break;
    case wire::LoadBalancing::FAILOVER:
      out.mode = Mode::kFailover;
      break;
    case wire::LoadBalancing::PASSTHROUGH:
      out.mode = Mode::kPassthrough;
      break;
    default:
      return Invalid("service load_balancing.mode", absl::StrCat("unknown value ", lb.mode()));
  }
  switch (lb.health_policy()) {
    case wire::LoadBalancing::ONLY_HEALTHY:
      out.allow_unhealthy = false;
      break;
    case wire::LoadBalancing::ALLOW_ALL:
      out.allow_unhealthy = true;
      break;
    default:
      return Invalid("service load_balancing.health_policy",
                     absl::StrCat("unknown value ", lb.health_policy()));
  }
  return out;
}

absl::StatusOr<runtime::Service> ConvertService(const wire::Service& s) {
  runtime::Service out;
  out.name = s.name();
  out.ns = s.namespace_();
  out.hostname = s.hostname();
  // The resource name "namespace/hostname" must split back into the two (a
  // removal finds the service that way); Kubernetes names never hold '/'.
  if (out.ns.find('/') != std::string::npos || out.hostname.find('/') != std::string::npos) {
    return Invalid("service", "namespace and hostname must not contain '/'");
  }
  for (int i = 0; i < s.addresses_size(); ++i) {
    const wire::NetworkAddress& a = s.addresses(i);
    std::string where = absl::StrCat("service addresses[", i, "]");
    absl::StatusOr<IpAddress> ip = Ip(where, a.address());
    if (!ip.ok()) return ip.status();
    uint32_t max = a.address().size() == 4 ? 32 : 128;
    if (a.has_length() && a.length() != max) {
      return Invalid(where, a.length() > max
                                ? absl::StrCat("prefix length ", a.length(), " is above ", max)
                                : absl::StrCat("CIDR VIP /", a.length(), " is not supported"));
    }
    out.vips.push_back(runtime::NetworkAddress{a.network(), *ip});
  }
  absl::StatusOr<std::map<uint16_t, uint16_t>> ports = Ports("service ports", s.ports());
  if (!ports.ok()) return ports.status();
  out.ports = std::move(*ports);
  out.subject_alt_names.assign(s.subject_alt_names().begin(), s.subject_alt_names().end());
  if (s.has_waypoint()) {
    absl::StatusOr<runtime::GatewayAddress> g = Gateway("service waypoint", s.waypoint());
    if (!g.ok()) return g.status();
    out.waypoint = std::move(*g);
  }
  for (int i = 0; i < s.weighted_waypoints_size(); ++i) {  // checked, not kept
    std::string where = absl::StrCat("service weighted_waypoints[", i, "]");
    if (!s.weighted_waypoints(i).has_destination()) {
      return Invalid(where, "no destination");
    }
    absl::StatusOr<runtime::GatewayAddress> g =
        Gateway(absl::StrCat(where, ".destination"), s.weighted_waypoints(i).destination());
    if (!g.ok()) return g.status();
  }
  if (s.has_load_balancing()) {
    absl::StatusOr<runtime::LoadBalancing> lb = ConvertLoadBalancing(s.load_balancing());
    if (!lb.ok()) return lb.status();
    out.load_balancing = std::move(*lb);
  }
  if (!wire::IPFamilies_IsValid(s.ip_families())) {
    return Invalid("service ip_families", absl::StrCat("unknown value ", s.ip_families()));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::variant<runtime::Workload, runtime::Service>> DecodeAddress(
    absl::string_view bytes) {
  // Not UTF-8 where the schema says string: the parse fails, and protobuf
  // would also log it to the host's stderr; the library prints nothing.
  google::protobuf::LogSilencer quiet;
  wire::Address a;
  if (!a.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError("not an istio.workload.Address");
  }
  switch (a.type_case()) {
    case wire::Address::kWorkload: {
      absl::StatusOr<runtime::Workload> w = ConvertWorkload(a.workload());
      if (!w.ok()) return w.status();
      return std::move(*w);
    }
    case wire::Address::kService: {
      absl::StatusOr<runtime::Service> s = ConvertService(a.service());
      if (!s.ok()) return s.status();
      return std::move(*s);
    }
    default:
      return absl::InvalidArgumentError("unknown address type (neither workload nor service)");
  }
}

std::vector<Rejection> AddressHandler::Apply(const std::vector<ResourceUpdate>& updates,
                                             const std::vector<std::string>& removed) {
  std::vector<Rejection> out;
  for (const ResourceUpdate& u : updates) {
    absl::StatusOr<std::variant<runtime::Workload, runtime::Service>> a = DecodeAddress(u.value);
    if (!a.ok()) {
      out.emplace_back(u.name, std::string(a.status().message()));
      continue;
    }
    absl::Status st;
    if (auto* w = std::get_if<runtime::Workload>(&*a)) {
      if (u.name != w->uid) {
        out.emplace_back(u.name,
                         absl::StrCat("resource name must be the workload uid \"", w->uid, "\""));
        continue;
      }
      st = directory_->Upsert(std::move(*w));
    } else {
      auto& s = std::get<runtime::Service>(*a);
      if (u.name != s.Key()) {
        out.emplace_back(u.name, absl::StrCat("resource name must be the service's "
                                              "\"namespace/hostname\" \"",
                                              s.Key(), "\""));
        continue;
      }
      st = directory_->UpsertService(std::move(s));
    }
    if (!st.ok()) out.emplace_back(u.name, std::string(st.message()));
  }
  for (const std::string& name : removed) {
    if (directory_->Remove(name)) continue;
    size_t slash = name.find('/');
    if (slash == std::string::npos) continue;
    absl::string_view ns = absl::string_view(name).substr(0, slash);
    absl::string_view host = absl::string_view(name).substr(slash + 1);
    if (host.find('/') != absl::string_view::npos) continue;  // a workload uid, not a service
    directory_->RemoveService(ns, host);
  }
  return out;
}

}  // namespace ambient::xds
