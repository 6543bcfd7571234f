// ambient/runtime/workload_directory.h: what a node proxy knows of the mesh,
// in ztunnel's model (istio.workload.Address = Workload | Service).
//
// Workloads are pods (or VMs) with addresses, an identity and, optionally, a
// waypoint. Services have VIPs per network, ports (service port -> target
// port), SANs, an optional waypoint and a load-balancing policy; their
// endpoints are the workloads whose `services` map names the service's
// "namespace/hostname" key, as in ztunnel's workload.proto. A control-plane
// client (xDS) or a config file fills the directory with exactly these
// records; the node proxy reads it for every connection.
//
// Lookups by uid, by (network, IP) and by namespace/hostname are O(1)
// (hash maps); a service's endpoints are kept in an index updated when a
// workload or service changes, so resolving a VIP costs O(endpoints).
//
// Threads: every method is thread-safe. Readers that need several lookups
// to agree (the outbound decision) take a View, which holds a shared lock:
// keep it short, and do not call the directory's writers while holding one.
#ifndef AMBIENT_RUNTIME_WORKLOAD_DIRECTORY_H_
#define AMBIENT_RUNTIME_WORKLOAD_DIRECTORY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/authz/ip.h"
#include "ambient/hbone/telemetry.h"
#include "ambient/identity/spiffe_id.h"

namespace ambient::runtime {

// NetworkAddress is an IP on a network (workload.proto NetworkAddress; the
// default network is "").
struct NetworkAddress {
  std::string network;
  ambient::IpAddress ip;

  // Key is "network/ip", the form ztunnel's local config spells.
  std::string Key() const;
  friend bool operator==(const NetworkAddress& a, const NetworkAddress& b) {
    return a.network == b.network && a.ip == b.ip;
  }
};

// GatewayAddress names a waypoint (or network gateway): an address or a
// namespaced hostname (a service or workload hostname), and the port its
// HBONE listener uses.
struct GatewayAddress {
  std::optional<NetworkAddress> address;  // set: reached by this IP
  std::string hostname_namespace;         // else: this service hostname
  std::string hostname;
  uint16_t hbone_mtls_port = 15008;

  // ToString is "network/ip" or "namespace/hostname" (for errors).
  std::string ToString() const;
};

// Locality of a workload (workload.proto Locality).
struct Locality {
  std::string region;
  std::string zone;
  std::string subzone;
};

// Workload is one entry of the directory (istio.workload.Workload's fields
// that a node proxy needs). It is the one full description of a workload;
// the other workload types are views of it for a lower layer or a wire:
// Telemetry() gives the hbone layer's hbone::WorkloadInfo (log and metric
// fields, also what baggage carries), the node proxy builds the authz
// layer's authz::Workload (namespace + selected policies) from it, and
// netns::zds::WorkloadInfo is the ZDS message that names a pod to look up
// here. All of them spell the namespace `ns`.
struct Workload {
  std::string uid;
  std::string name;
  std::string ns;
  std::string service_account = "default";
  std::string trust_domain = "cluster.local";
  std::vector<std::string> addresses;  // numeric IPv4/IPv6, no port
  std::string network;                 // "" = the default network
  bool hbone = true;                   // tunnel_protocol HBONE (else NONE)
  std::vector<std::string> policies;   // selected authorization policy keys
  // Telemetry labels (istio.workload.Workload canonical_name,
  // canonical_revision, cluster_id); see Telemetry() for the defaults.
  std::string canonical_service;
  std::string canonical_revision;
  std::string cluster;
  std::string node;
  Locality locality;
  bool healthy = true;    // status HEALTHY (else UNHEALTHY)
  uint32_t capacity = 1;  // load-balancing weight (0 counts as 1, as in ztunnel)
  // The services this workload is an endpoint of: "namespace/hostname" ->
  // service port -> target port (an empty map: the service's own mapping).
  std::map<std::string, std::map<uint16_t, uint16_t>> services;
  // The waypoint in front of this workload, if any.
  std::optional<GatewayAddress> waypoint;

  // Identity returns the workload's SPIFFE ID, spiffe://TD/ns/NS/sa/SA,
  // built from trust_domain, ns and service_account. Errors: InvalidArgument
  // (with a SpiffeIdError detail, the byte offset counted in the whole ID)
  // when those fields do not make a valid SPIFFE ID; a workload the
  // directory holds always has a valid one (Upsert checks it).
  absl::StatusOr<identity::SpiffeId> Identity() const;
  // Telemetry returns the workload's metadata for access logs, metric
  // labels and baggage: name, namespace, cluster, locality, and the
  // canonical service and revision, which default to the name and "latest"
  // as in Istio.
  hbone::WorkloadInfo Telemetry() const;
};

// LoadBalancing is workload.proto's LoadBalancing.
struct LoadBalancing {
  enum class Scope { kRegion, kZone, kSubzone, kNode, kCluster, kNetwork };
  // kStandard is UNSPECIFIED: random among all healthy endpoints.
  enum class Mode { kStandard, kStrict, kFailover, kPassthrough };
  std::vector<Scope> routing_preference;
  Mode mode = Mode::kStandard;
  bool allow_unhealthy = false;  // health_policy ALLOW_ALL
};

// Service is istio.workload.Service's fields a node proxy needs.
struct Service {
  std::string name;
  std::string ns;
  std::string hostname;
  std::vector<NetworkAddress> vips;
  // service port -> target port; a target port of 0 means "the endpoint's
  // own mapping" (named ports).
  std::map<uint16_t, uint16_t> ports;
  std::vector<std::string> subject_alt_names;  // SPIFFE IDs also accepted
  std::optional<GatewayAddress> waypoint;
  std::optional<LoadBalancing> load_balancing;

  // Key is "namespace/hostname", the key of Workload::services.
  std::string Key() const { return ns + "/" + hostname; }
};

class WorkloadDirectory {
 public:
  class View;

  // Upsert adds `w` or replaces the workload with the same uid. Errors
  // (InvalidArgument, directory unchanged): empty uid, name or namespace, an
  // address that is not a numeric IP, an address already owned by another
  // uid on the same network, an identity that is not a valid SPIFFE ID, a
  // malformed `services` key, or a waypoint without a destination.
  absl::Status Upsert(Workload w);
  // Remove forgets workload `uid`; false if there was none.
  bool Remove(absl::string_view uid);
  // UpsertService adds `s` or replaces the service with the same
  // namespace/hostname. Errors (InvalidArgument, directory unchanged): empty
  // name, namespace or hostname, a VIP already owned by another service of
  // the same namespace, a port 0, a SAN that is not a SPIFFE ID, a waypoint
  // without a destination. Services of different namespaces may share a VIP
  // (lookups prefer the caller's namespace, as ztunnel does).
  absl::Status UpsertService(Service s);
  // RemoveService forgets service "namespace/hostname"; false if unknown.
  bool RemoveService(absl::string_view ns, absl::string_view hostname);

  // ByUid / ByAddress (a numeric IP, no port, on the default network) /
  // ByName return a copy.
  std::optional<Workload> ByUid(absl::string_view uid) const;
  std::optional<Workload> ByAddress(absl::string_view ip) const;
  std::optional<Workload> ByName(absl::string_view ns, absl::string_view name) const;
  // ServiceByHostname / ServiceByVip return a copy.
  std::optional<Service> ServiceByHostname(absl::string_view ns, absl::string_view hostname) const;
  std::optional<Service> ServiceByVip(const NetworkAddress& vip,
                                      absl::string_view prefer_ns = "") const;
  // All / AllServices return a copy of every entry, in uid / key order.
  std::vector<Workload> All() const;
  std::vector<Service> AllServices() const;
  size_t size() const;
  size_t service_count() const;

  // Clone returns a new directory holding a copy of every workload and
  // service of this one (a consistent snapshot); later changes to either do
  // not reach the other. Throws std::bad_alloc only.
  std::unique_ptr<WorkloadDirectory> Clone() const;

  // Read takes a consistent read-only view (a shared lock until the View is
  // destroyed).
  View Read() const;

 private:
  struct ServiceEntry {
    Service service;
    std::set<std::string> endpoints;  // uids
  };
  bool RemoveLocked(const std::string& uid);  // mu_ held exclusively

  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Workload> by_uid_;
  std::unordered_map<std::string, std::string> uid_by_addr_;  // NetworkAddress::Key -> uid
  std::unordered_map<std::string, std::string> uid_by_name_;  // "ns/name" -> uid (last upserted)
  std::unordered_map<std::string, ServiceEntry> services_;    // "ns/hostname" -> service
  std::unordered_map<std::string, std::vector<std::string>> services_by_vip_;  // Key -> keys
  // Endpoint uids of services that are not (yet) known, so a service added
  // after its workloads finds them.
  std::unordered_map<std::string, std::set<std::string>> pending_endpoints_;
};

// View is a consistent, read-only look at a WorkloadDirectory. Pointers it
// returns are valid while the View lives.
class WorkloadDirectory::View {
 public:
  const Workload* WorkloadByUid(absl::string_view uid) const;
  const Workload* WorkloadByAddress(const NetworkAddress& a) const;
  // ServiceByVip prefers a service of namespace `prefer_ns` when several
  // share the VIP, else the first by key.
  const Service* ServiceByVip(const NetworkAddress& vip, absl::string_view prefer_ns) const;
  const Service* ServiceByHostname(absl::string_view ns, absl::string_view hostname) const;
  // Endpoints lists the workloads that are endpoints of `s`, in uid order.
  std::vector<const Workload*> Endpoints(const Service& s) const;
  // InboundService guesses the service a connection to `w` on `port` came
  // for (dst.service of inbound lines, ztunnel's guess_inbound_service):
  // the first of w's services, by key, with a port whose target is `port`
  // (the service's mapping or w's own). nullptr when none.
  const Service* InboundService(const Workload& w, uint16_t port) const;
  // ForEachWorkload calls `f` with every workload, in no particular order,
  // without copying any (WorkloadDirectory::All copies and sorts).
  void ForEachWorkload(const std::function<void(const Workload&)>& f) const;

 private:
  friend class WorkloadDirectory;
  explicit View(const WorkloadDirectory* d) : d_(d), lock_(d->mu_) {}
  const WorkloadDirectory* d_;
  std::shared_lock<std::shared_mutex> lock_;
};

// ParseNetworkAddress reads "network/ip" or a bare "ip" (default network).
// InvalidArgument otherwise.
absl::StatusOr<NetworkAddress> ParseNetworkAddress(absl::string_view text);

}  // namespace ambient::runtime

#endif  // AMBIENT_RUNTIME_WORKLOAD_DIRECTORY_H_
