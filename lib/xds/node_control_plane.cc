// NodeControlPlane: AdsClient + CertificateClient on one loop (see the header).
#include "ambient/xds/node_control_plane.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ambient::xds {

absl::StatusOr<std::unique_ptr<NodeControlPlane>> NodeControlPlane::New(
    runtime::EventLoop* loop, NodeControlPlaneOptions options) {
  if (options.workloads == nullptr || options.policies == nullptr) {
    return absl::InvalidArgumentError(
        "node control plane: a workload directory and a policy "
        "store are required");
  }
  if (options.node.node_name.empty()) {
    return absl::InvalidArgumentError("node control plane: the node name is required");
  }
  std::unique_ptr<NodeControlPlane> cp(new NodeControlPlane(loop, std::move(options)));
  AdsClientOptions ads;
  ads.connection = cp->options_.xds;
  ads.node = cp->options_.node;
  ads.types = {{kAddressType, &cp->address_tap_}, {kAuthorizationType, &cp->policy_tap_}};
  auto client = AdsClient::New(loop, std::move(ads));
  if (!client.ok()) return client.status();
  cp->ads_ = std::move(*client);
  CertificateClientOptions co;
  co.certificates = cp->options_.certificates;
  co.ca_timeout = cp->options_.ca_timeout;
  NodeControlPlane* self = cp.get();
  co.on_answer = [self] { self->UpdateBundles(); };
  absl::StatusOr<std::unique_ptr<CertificateClient>> certs;
  if (cp->options_.ca.has_value()) {
    co.ca = *cp->options_.ca;
    certs = CertificateClient::New(loop, std::move(co));
  } else {
    certs = CertificateClient::OnConnection(loop, cp->ads_->connection(), std::move(co));
  }
  if (!certs.ok()) return certs.status();
  cp->certs_ = std::move(*certs);
  return cp;
}

NodeControlPlane::NodeControlPlane(runtime::EventLoop* loop, NodeControlPlaneOptions options)
    : loop_(loop),
      options_(std::move(options)),
      addresses_(options_.workloads),
      policies_(options_.policies) {}

NodeControlPlane::~NodeControlPlane() = default;

void NodeControlPlane::Start() { ads_->Start(); }

absl::StatusOr<std::shared_ptr<identity::CredentialHolder>> NodeControlPlane::Credentials(
    const runtime::Workload& w) {
  auto id = w.Identity();
  if (!id.ok()) return id.status();
  return certs_->Acquire(*id, CertPriority::kWarmup);
}

std::function<absl::StatusOr<std::shared_ptr<identity::CredentialHolder>>(const runtime::Workload&)>
NodeControlPlane::CredentialsFunction() {
  return [this](const runtime::Workload& w) { return Credentials(w); };
}

absl::StatusOr<runtime::Workload> NodeControlPlane::MatchPod(
    absl::string_view ns, absl::string_view name, absl::string_view service_account) const {
  std::optional<runtime::Workload> found;
  for (runtime::Workload& w : options_.workloads->All()) {
    if (w.node != options_.node.node_name || w.ns != ns || w.name != name) continue;
    if (!service_account.empty() && w.service_account != service_account) continue;
    if (found.has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat("pod ", ns, "/", name, ": more than one workload on node ",
                       options_.node.node_name, " (", found->uid, ", ", w.uid, ")"));
    }
    found = std::move(w);
  }
  if (!found.has_value()) {
    return absl::NotFoundError(absl::StrCat("pod ", ns, "/", name, ": no workload on node ",
                                            options_.node.node_name, " from xDS yet"));
  }
  return *std::move(found);
}

void NodeControlPlane::OnAddressesApplied() {
  if (!options_.prefetch) return;
  std::set<identity::SpiffeId> wanted;
  options_.workloads->Read().ForEachWorkload([&](const runtime::Workload& w) {
    if (w.node != options_.node.node_name || !w.hbone) return;
    absl::StatusOr<identity::SpiffeId> id = w.Identity();
    if (id.ok()) wanted.insert(*std::move(id));
  });
  for (auto it = prefetched_.begin(); it != prefetched_.end();) {
    it = wanted.count(it->first) == 0 ? prefetched_.erase(it) : std::next(it);
  }
  for (const identity::SpiffeId& id : wanted) {
    if (prefetched_.count(id) == 0)
      prefetched_[id] = certs_->Acquire(id, CertPriority::kBackground);
  }
}

void NodeControlPlane::UpdateBundles() {
  if (!options_.bundles) return;
  std::map<std::string, std::set<std::string>> roots;  // trust domain -> distinct roots
  std::map<std::string, identity::TrustDomain> domains;
  for (const CertStatus& s : certs_->Status()) {
    if (s.root_pem.empty()) continue;
    const identity::TrustDomain& td = s.id.trust_domain();
    roots[td.name()].insert(s.root_pem);
    domains.emplace(td.name(), td);
  }
  for (const auto& [name, pems] : roots) {
    std::string pem;
    for (const std::string& p : pems) absl::StrAppend(&pem, p, p.back() == '\n' ? "" : "\n");
    if (bundle_pem_[name] == pem) continue;
    absl::StatusOr<std::shared_ptr<const identity::TrustBundle>> bundle =
        identity::TrustBundle::FromPem(domains.at(name), pem);
    if (!bundle.ok()) continue;  // the manager verified these chains; cannot happen
    options_.bundles->Update(*std::move(bundle));
    bundle_pem_[name] = std::move(pem);
  }
}

bool NodeControlPlane::ready() const {
  if (!ads_->ready()) return false;
  for (const CertStatus& s : certs_->Status()) {
    if (s.state != CertStatus::State::kAvailable) return false;
  }
  return true;
}

std::vector<std::string> NodeControlPlane::TrustRootsPem() const {
  std::set<std::string> roots;
  for (const CertStatus& s : certs_->Status()) {
    if (!s.root_pem.empty()) roots.insert(s.root_pem);
  }
  return std::vector<std::string>(roots.begin(), roots.end());
}

}  // namespace ambient::xds
