#include "ambient/runtime/workload_directory.h"

#include <algorithm>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "ambient/identity/spiffe_id.h"

namespace ambient::runtime {

std::string NetworkAddress::Key() const { return absl::StrCat(network, "/", ip.ToString()); }

std::string GatewayAddress::ToString() const {
  if (address) return address->Key();
  return absl::StrCat(hostname_namespace, "/", hostname);
}

absl::StatusOr<NetworkAddress> ParseNetworkAddress(absl::string_view text) {
  NetworkAddress a;
  absl::string_view ip = text;
  if (size_t slash = text.find('/'); slash != absl::string_view::npos) {
    a.network = std::string(text.substr(0, slash));
    ip = text.substr(slash + 1);
  }
  absl::StatusOr<ambient::IpAddress> parsed = ambient::IpAddress::Parse(ip);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not an IP or network/IP"));
  }
  a.ip = *parsed;
  return a;
}

absl::StatusOr<identity::SpiffeId> Workload::Identity() const {
  const std::string path = absl::StrCat("/ns/", ns, "/sa/", service_account);
  // TrustDomain::Parse also takes a whole SPIFFE ID (go-spiffe's rule); a
  // workload's trust domain must be the bare name, so text with ':' or '/'
  // goes to the error path below.
  if (trust_domain.find_first_of(":/") == std::string::npos) {
    if (absl::StatusOr<identity::TrustDomain> td = identity::TrustDomain::Parse(trust_domain);
        td.ok()) {
      return identity::SpiffeId::FromParts(*td, path);
    }
  }
  // The error of the whole ID, so its byte offset counts from "spiffe://".
  return identity::SpiffeId::Parse(absl::StrCat("spiffe://", trust_domain, path));
}

hbone::WorkloadInfo Workload::Telemetry() const {
  hbone::WorkloadInfo w;
  w.name = name;
  w.ns = ns;
  w.canonical_service = canonical_service.empty() ? name : canonical_service;
  w.canonical_revision = canonical_revision.empty() ? "latest" : canonical_revision;
  w.cluster = cluster;
  w.region = locality.region;
  w.zone = locality.zone;
  return w;
}

namespace {

// AddressKeys returns the NetworkAddress keys of `w`'s addresses.
absl::StatusOr<std::vector<std::string>> AddressKeys(const Workload& w) {
  std::vector<std::string> keys;
  for (const std::string& a : w.addresses) {
    absl::StatusOr<ambient::IpAddress> ip = ambient::IpAddress::Parse(a);
    if (!ip.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("workload ", w.uid, ": address \"", a, "\" is not a numeric IP"));
    }
    keys.push_back(NetworkAddress{w.network, *ip}.Key());
  }
  return keys;
}

absl::Status CheckGateway(const std::optional<GatewayAddress>& g, absl::string_view who) {
  if (!g) return absl::OkStatus();
  if (!g->address && (g->hostname.empty() || g->hostname_namespace.empty())) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": waypoint needs an address or a namespace/hostname"));
  }
  if (g->hbone_mtls_port == 0) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": waypoint HBONE port 0"));
  }
  return absl::OkStatus();
}

std::string NameKey(absl::string_view ns, absl::string_view name) {
  return absl::StrCat(ns, "/", name);
}

}  // namespace

absl::Status WorkloadDirectory::Upsert(Workload w) {
  if (w.uid.empty() || w.name.empty() || w.ns.empty()) {
    return absl::InvalidArgumentError("workload needs a uid, a name and a namespace");
  }
  if (absl::StatusOr<identity::SpiffeId> id = w.Identity(); !id.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("workload ", w.uid, ": identity spiffe://",
                                                   w.trust_domain, "/ns/", w.ns, "/sa/",
                                                   w.service_account, ": ", id.status().message()));
  }
  for (const auto& [key, ports] : w.services) {
    size_t slash = key.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == key.size()) {
      return absl::InvalidArgumentError(absl::StrCat("workload ", w.uid, ": service key \"", key,
                                                     "\" is not namespace/hostname"));
    }
  }
  if (absl::Status st = CheckGateway(w.waypoint, absl::StrCat("workload ", w.uid)); !st.ok()) {
    return st;
  }
  absl::StatusOr<std::vector<std::string>> keys = AddressKeys(w);
  if (!keys.ok()) return keys.status();

  std::unique_lock lock(mu_);
  for (const std::string& k : *keys) {
    auto it = uid_by_addr_.find(k);
    if (it != uid_by_addr_.end() && it->second != w.uid) {
      return absl::InvalidArgumentError(absl::StrCat("workload ", w.uid, ": address ",
                                                     k.substr(k.find('/') + 1),
                                                     " already belongs to ", it->second));
    }
  }
  RemoveLocked(w.uid);
  for (const std::string& k : *keys) uid_by_addr_[k] = w.uid;
  uid_by_name_[NameKey(w.ns, w.name)] = w.uid;
  for (const auto& [key, ports] : w.services) {
    auto svc = services_.find(key);
    if (svc != services_.end()) {
      svc->second.endpoints.insert(w.uid);
    } else {
      pending_endpoints_[key].insert(w.uid);
    }
  }
  std::string uid = w.uid;
  by_uid_[uid] = std::move(w);
  return absl::OkStatus();
}

bool WorkloadDirectory::Remove(absl::string_view uid) {
  std::unique_lock lock(mu_);
  return RemoveLocked(std::string(uid));
}

bool WorkloadDirectory::RemoveLocked(const std::string& uid) {
  auto it = by_uid_.find(uid);
  if (it == by_uid_.end()) return false;
  const Workload& w = it->second;
  if (absl::StatusOr<std::vector<std::string>> keys = AddressKeys(w); keys.ok()) {
    for (const std::string& k : *keys) uid_by_addr_.erase(k);
  }
  for (const auto& [key, ports] : w.services) {
    if (auto svc = services_.find(key); svc != services_.end()) svc->second.endpoints.erase(uid);
    if (auto p = pending_endpoints_.find(key); p != pending_endpoints_.end()) {
      p->second.erase(uid);
      if (p->second.empty()) pending_endpoints_.erase(p);
    }
  }
  std::string name_key = NameKey(w.ns, w.name);
  by_uid_.erase(it);
  if (auto n = uid_by_name_.find(name_key); n != uid_by_name_.end() && n->second == uid) {
    uid_by_name_.erase(n);
    // Rare: another uid with the same namespace/name takes the name over.
    for (const auto& [other_uid, other] : by_uid_) {
      if (NameKey(other.ns, other.name) == name_key) {
        uid_by_name_[name_key] = other_uid;
        break;
      }
    }
  }
  return true;
}

absl::Status WorkloadDirectory::UpsertService(Service s) {
  if (s.name.empty() || s.ns.empty() || s.hostname.empty()) {
    return absl::InvalidArgumentError("service needs a name, a namespace and a hostname");
  }
  std::string key = s.Key();
  for (const auto& [port, target] : s.ports) {
    if (port == 0) return absl::InvalidArgumentError(absl::StrCat("service ", key, ": port 0"));
  }
  for (const std::string& san : s.subject_alt_names) {
    if (absl::StatusOr<identity::SpiffeId> id = identity::SpiffeId::Parse(san); !id.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("service ", key, ": subject alt name ", san, ": ", id.status().message()));
    }
  }
  if (absl::Status st = CheckGateway(s.waypoint, absl::StrCat("service ", key)); !st.ok()) {
    return st;
  }
  std::unique_lock lock(mu_);
  for (const NetworkAddress& vip : s.vips) {
    auto it = services_by_vip_.find(vip.Key());
    if (it == services_by_vip_.end()) continue;
    for (const std::string& other : it->second) {
      if (other != key && services_.at(other).service.ns == s.ns) {
        return absl::InvalidArgumentError(
            absl::StrCat("service ", key, ": VIP ", vip.Key(), " already belongs to ", other));
      }
    }
  }
  ServiceEntry entry;
  if (auto old = services_.find(key); old != services_.end()) {
    entry.endpoints = std::move(old->second.endpoints);
    for (const NetworkAddress& vip : old->second.service.vips) {
      auto& keys = services_by_vip_[vip.Key()];
      keys.erase(std::remove(keys.begin(), keys.end(), key), keys.end());
      if (keys.empty()) services_by_vip_.erase(vip.Key());
    }
    services_.erase(old);
  } else if (auto p = pending_endpoints_.find(key); p != pending_endpoints_.end()) {
    entry.endpoints = std::move(p->second);
    pending_endpoints_.erase(p);
  }
  for (const NetworkAddress& vip : s.vips) {
    auto& keys = services_by_vip_[vip.Key()];
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      keys.insert(std::upper_bound(keys.begin(), keys.end(), key), key);
    }
  }
  entry.service = std::move(s);
  services_.emplace(key, std::move(entry));
  return absl::OkStatus();
}

bool WorkloadDirectory::RemoveService(absl::string_view ns, absl::string_view hostname) {
  std::string key = NameKey(ns, hostname);
  std::unique_lock lock(mu_);
  auto it = services_.find(key);
  if (it == services_.end()) return false;
  for (const NetworkAddress& vip : it->second.service.vips) {
    auto v = services_by_vip_.find(vip.Key());
    if (v == services_by_vip_.end()) continue;
    v->second.erase(std::remove(v->second.begin(), v->second.end(), key), v->second.end());
    if (v->second.empty()) services_by_vip_.erase(v);
  }
  // Its endpoints still name it: they wait for it to come back.
  if (!it->second.endpoints.empty()) pending_endpoints_[key] = std::move(it->second.endpoints);
  services_.erase(it);
  return true;
}

WorkloadDirectory::View WorkloadDirectory::Read() const { return View(this); }

std::optional<Workload> WorkloadDirectory::ByUid(absl::string_view uid) const {
  View v = Read();
  const Workload* w = v.WorkloadByUid(uid);
  return w ? std::optional<Workload>(*w) : std::nullopt;
}

std::optional<Workload> WorkloadDirectory::ByAddress(absl::string_view ip) const {
  absl::StatusOr<ambient::IpAddress> a = ambient::IpAddress::Parse(ip);
  if (!a.ok()) return std::nullopt;
  View v = Read();
  const Workload* w = v.WorkloadByAddress(NetworkAddress{"", *a});
  return w ? std::optional<Workload>(*w) : std::nullopt;
}

std::optional<Workload> WorkloadDirectory::ByName(absl::string_view ns,
                                                  absl::string_view name) const {
  std::shared_lock lock(mu_);
  auto it = uid_by_name_.find(NameKey(ns, name));
  if (it == uid_by_name_.end()) return std::nullopt;
  auto w = by_uid_.find(it->second);
  if (w == by_uid_.end()) return std::nullopt;
  return w->second;
}

std::optional<Service> WorkloadDirectory::ServiceByHostname(absl::string_view ns,
                                                            absl::string_view hostname) const {
  View v = Read();
  const Service* s = v.ServiceByHostname(ns, hostname);
  return s ? std::optional<Service>(*s) : std::nullopt;
}

std::optional<Service> WorkloadDirectory::ServiceByVip(const NetworkAddress& vip,
                                                       absl::string_view prefer_ns) const {
  View v = Read();
  const Service* s = v.ServiceByVip(vip, prefer_ns);
  return s ? std::optional<Service>(*s) : std::nullopt;
}

void WorkloadDirectory::View::ForEachWorkload(const std::function<void(const Workload&)>& f) const {
  for (const auto& [uid, w] : d_->by_uid_) f(w);
}

std::vector<Workload> WorkloadDirectory::All() const {
  std::shared_lock lock(mu_);
  std::vector<Workload> out;
  out.reserve(by_uid_.size());
  for (const auto& [uid, w] : by_uid_) out.push_back(w);
  std::sort(out.begin(), out.end(),
            [](const Workload& a, const Workload& b) { return a.uid < b.uid; });
  return out;
}

std::vector<Service> WorkloadDirectory::AllServices() const {
  std::shared_lock lock(mu_);
  std::vector<Service> out;
  out.reserve(services_.size());
  for (const auto& [key, e] : services_) out.push_back(e.service);
  std::sort(out.begin(), out.end(),
            [](const Service& a, const Service& b) { return a.Key() < b.Key(); });
  return out;
}

std::unique_ptr<WorkloadDirectory> WorkloadDirectory::Clone() const {
  auto out = std::make_unique<WorkloadDirectory>();
  std::shared_lock lock(mu_);
  out->by_uid_ = by_uid_;
  out->uid_by_addr_ = uid_by_addr_;
  out->uid_by_name_ = uid_by_name_;
  out->services_ = services_;
  out->services_by_vip_ = services_by_vip_;
  out->pending_endpoints_ = pending_endpoints_;
  return out;
}

size_t WorkloadDirectory::size() const {
  std::shared_lock lock(mu_);
  return by_uid_.size();
}

size_t WorkloadDirectory::service_count() const {
  std::shared_lock lock(mu_);
  return services_.size();
}

const Workload* WorkloadDirectory::View::WorkloadByUid(absl::string_view uid) const {
  auto it = d_->by_uid_.find(std::string(uid));
  return it == d_->by_uid_.end() ? nullptr : &it->second;
}

const Workload* WorkloadDirectory::View::WorkloadByAddress(const NetworkAddress& a) const {
  auto it = d_->uid_by_addr_.find(a.Key());
  if (it == d_->uid_by_addr_.end()) return nullptr;
  return WorkloadByUid(it->second);
}

const Service* WorkloadDirectory::View::ServiceByVip(const NetworkAddress& vip,
                                                     absl::string_view prefer_ns) const {
  auto it = d_->services_by_vip_.find(vip.Key());
  if (it == d_->services_by_vip_.end() || it->second.empty()) return nullptr;
  const Service* first = nullptr;
  for (const std::string& key : it->second) {
    auto s = d_->services_.find(key);
    if (s == d_->services_.end()) continue;
    if (first == nullptr) first = &s->second.service;
    if (s->second.service.ns == prefer_ns) return &s->second.service;
  }
  return first;
}

const Service* WorkloadDirectory::View::ServiceByHostname(absl::string_view ns,
                                                          absl::string_view hostname) const {
  auto it = d_->services_.find(NameKey(ns, hostname));
  return it == d_->services_.end() ? nullptr : &it->second.service;
}

std::vector<const Workload*> WorkloadDirectory::View::Endpoints(const Service& s) const {
  std::vector<const Workload*> out;
  auto it = d_->services_.find(s.Key());
  if (it == d_->services_.end()) return out;
  out.reserve(it->second.endpoints.size());
  for (const std::string& uid : it->second.endpoints) {
    if (const Workload* w = WorkloadByUid(uid)) out.push_back(w);
  }
  return out;
}

const Service* WorkloadDirectory::View::InboundService(const Workload& w, uint16_t port) const {
  for (const auto& [key, own_ports] : w.services) {
    auto it = d_->services_.find(key);
    if (it == d_->services_.end()) continue;
    const Service& s = it->second.service;
    for (const auto& [service_port, target] : s.ports) {
      if (target == port) return &s;
      auto own = own_ports.find(service_port);
      if (own != own_ports.end() && own->second == port) return &s;
    }
  }
  return nullptr;
}

}  // namespace ambient::runtime
