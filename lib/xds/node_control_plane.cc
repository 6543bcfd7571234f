// NodeControlPlane: AdsClient + CertificateManager on one loop (see the header).
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
  if (cp->options_.ca.has_value()) {
    auto ca = ControlPlaneConnection::New(loop, *cp->options_.ca);
    if (!ca.ok()) return ca.status();
    cp->ca_ = std::move(*ca);
  }
  return cp;
}

NodeControlPlane::NodeControlPlane(runtime::EventLoop* loop, NodeControlPlaneOptions options)
    : loop_(loop),
      options_(std::move(options)),
      addresses_(options_.workloads),
      policies_(options_.policies),
      certs_(options_.certificates),
      timer_(loop, [this] { Pump(); }),
      self_(std::make_shared<std::atomic<NodeControlPlane*>>(this)) {}

NodeControlPlane::~NodeControlPlane() { *self_ = nullptr; }

void NodeControlPlane::Start() {
  ads_->Start();
  if (ca_) ca_->Start();
  Pump();
}

// The manager works in wall-clock time (certificate validity is Unix time);
// the loop's timers and call deadlines in its monotonic clock.
void NodeControlPlane::ArmTimer() {
  absl::Time next = certs_.NextDeadline();
  if (next == absl::InfiniteFuture()) {
    timer_.Disarm();
    return;
  }
  timer_.Arm(loop_->Now() + std::max(absl::ZeroDuration(), next - absl::Now()));
}

void NodeControlPlane::Pump() {
  absl::Time now = absl::Now();
  ControlPlaneConnection* conn = ca_ ? ca_.get() : ads_->connection();
  for (CertFetch& f : certs_.StartFetches(now)) {
    uint64_t id = f.fetch;
    std::weak_ptr<std::atomic<NodeControlPlane*>> weak = self_;
    conn->Call(kCaMethod, std::move(f.request), loop_->Now() + options_.ca_timeout,
               [weak, id](absl::StatusOr<std::string> answer) {
                 auto self = weak.lock();
                 if (!self || *self == nullptr) return;
                 NodeControlPlane* cp = self->load();
                 // The outcome is kept in the manager's status (last_error).
                 (void)cp->certs_.OnFetchDone(id, std::move(answer), absl::Now());
                 cp->UpdateBundles();
                 cp->Pump();
               });
  }
  ArmTimer();
}

absl::StatusOr<std::shared_ptr<identity::CredentialHolder>> NodeControlPlane::Credentials(
    const runtime::Workload& w) {
  auto id = w.Identity();
  if (!id.ok()) return id.status();
  std::shared_ptr<identity::CredentialHolder> holder =
      certs_.Acquire(*id, CertPriority::kWarmup, absl::Now());
  Pump();
  std::weak_ptr<std::atomic<NodeControlPlane*>> weak = self_;
  runtime::EventLoop* loop = loop_;
  identity::SpiffeId spiffe = *id;
  // An aliasing handle: one Acquire, one Release when the last copy goes.
  identity::CredentialHolder* raw = holder.get();
  return std::shared_ptr<identity::CredentialHolder>(
      raw, [holder, weak, loop, spiffe](identity::CredentialHolder*) {
        auto self = weak.lock();
        if (!self || *self == nullptr) return;
        loop->Post([weak, spiffe] {
          auto s = weak.lock();
          NodeControlPlane* cp = s ? s->load() : nullptr;
          if (cp != nullptr) cp->Release(spiffe);
        });
      });
}

void NodeControlPlane::Release(const identity::SpiffeId& id) {
  certs_.Release(id);
  ArmTimer();
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
  for (const runtime::Workload& w : options_.workloads->All()) {
    if (w.node != options_.node.node_name || !w.hbone) continue;
    absl::StatusOr<identity::SpiffeId> id = w.Identity();
    if (id.ok()) wanted.insert(*std::move(id));
  }
  absl::Time now = absl::Now();
  for (const identity::SpiffeId& id : wanted) {
    if (prefetched_.count(id) == 0) certs_.Acquire(id, CertPriority::kBackground, now);
  }
  for (const identity::SpiffeId& id : prefetched_) {
    if (wanted.count(id) == 0) certs_.Release(id);
  }
  prefetched_ = std::move(wanted);
  Pump();
}

void NodeControlPlane::UpdateBundles() {
  if (!options_.bundles) return;
  std::map<std::string, std::set<std::string>> roots;  // trust domain -> distinct roots
  std::map<std::string, identity::TrustDomain> domains;
  for (const CertStatus& s : certs_.Status()) {
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
  for (const CertStatus& s : certs_.Status()) {
    if (s.state != CertStatus::State::kAvailable) return false;
  }
  return true;
}

std::vector<std::string> NodeControlPlane::TrustRootsPem() const {
  std::set<std::string> roots;
  for (const CertStatus& s : certs_.Status()) {
    if (!s.root_pem.empty()) roots.insert(s.root_pem);
  }
  return std::vector<std::string>(roots.begin(), roots.end());
}

}  // namespace ambient::xds
