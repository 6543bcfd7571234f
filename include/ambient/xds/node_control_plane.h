// ambient/xds/node_control_plane.h: a node proxy's whole control plane from
// istiod, on a runtime::EventLoop: the mesh (workloads and authorization
// policies over delta ADS) and the captured pods' certificates (the Istio CA).
//
// Object model. A NodeControlPlane owns an AdsClient subscribed to
// istio.workload.Address (into the host's WorkloadDirectory) and
// istio.security.Authorization (into its PolicyStore), and a
// CertificateClient (certificate_client.h) whose CreateCertificate calls go
// over the xDS connection or, when `ca` is set, over a connection of its own
// (which connects at once); renewals and retries happen without the host
// doing anything.
//
// Credentials() is a NodeProxyOptions::credentials: for a workload it
// acquires the workload's SPIFFE ID (kWarmup priority) and returns the
// identity's CredentialHolder through a handle whose destruction releases
// exactly that one use (on the loop). The node proxy keeps the handle while
// the pod is captured, so the certificate of an identity is dropped with its
// last pod.
//
// MatchPod finds the xDS workload of a pod a node agent captured as
// ztunnel does: the ZDS uid is the Kubernetes pod uid, not the xDS uid
// ("cluster//Pod/ns/name"), so the match is by namespace and name among the
// workloads whose `node` is this node's name (and, when given, by service
// account). A pod not in xDS yet is NotFound; ZDS retries the add.
//
// Prefetch: as ztunnel does for the pods of its node, every identity of a
// workload whose `node` is this node (and that speaks HBONE) is acquired at
// background priority while the workload is in xDS, so its certificate is
// usually there before the node agent hands the pod over; Credentials()
// then finds it at once. A pod captured before its certificate arrived
// gets FailedPrecondition from the node proxy and is retried by ZDS.
//
// Trust: the workload trust roots are the roots the CA's chains end with
// (TrustRootsPem), as ztunnel takes them; the xDS connection's roots file
// only authenticates istiod. With `bundles` set, each trust domain's roots
// are put into it as they arrive (TrustBundleSource::Update), so it can be
// the node proxy's NodeProxyOptions::bundles.
//
// Readiness (ready()): both xDS types have been ACKed once and every
// identity in use has a certificate.
//
// Threads: the loop's thread, except that the handles Credentials() returns
// may be destroyed on any thread (the release is posted to the loop).
#ifndef AMBIENT_XDS_NODE_CONTROL_PLANE_H_
#define AMBIENT_XDS_NODE_CONTROL_PLANE_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/authz/policy_store.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/trust_bundle.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/workload_directory.h"
#include "ambient/xds/address_handler.h"
#include "ambient/xds/ads_client.h"
#include "ambient/xds/authorization_handler.h"
#include "ambient/xds/cert_manager.h"
#include "ambient/xds/certificate_client.h"
#include "ambient/xds/control_plane_connection.h"

namespace ambient::xds {

struct NodeControlPlaneOptions {
  ConnectionOptions xds;
  // A separate CA (ztunnel's CA_ADDRESS); unset: CreateCertificate goes to
  // the xDS connection (istiod is the CA).
  std::optional<ConnectionOptions> ca;
  NodeIdentity node;  // node.node_name selects this node's workloads
  CertManagerOptions certificates;
  // A CreateCertificate call not answered in this time fails (and is retried).
  absl::Duration ca_timeout = absl::Seconds(10);
  // Borrowed; must outlive the control plane. Required.
  runtime::WorkloadDirectory* workloads = nullptr;
  authz::PolicyStore* policies = nullptr;
  // Optional: filled with the CA's trust roots per trust domain (see above).
  std::shared_ptr<identity::TrustBundleSource> bundles;
  // Prefetch the certificates of this node's HBONE workloads (see above).
  bool prefetch = true;
  // Called (loop thread) after each Authorization push was applied to
  // `policies`: where the host re-checks open connections
  // (runtime::NodeProxy::RecheckPolicies), as ztunnel's policy watcher does.
  std::function<void()> on_policies_changed;
};

class NodeControlPlane {
 public:
  // New checks the options (InvalidArgument: a missing directory or store,
  // an empty node name) and makes the connections (their errors); nothing is
  // sent before Start. `loop` must outlive the control plane.
  static absl::StatusOr<std::unique_ptr<NodeControlPlane>> New(runtime::EventLoop* loop,
                                                               NodeControlPlaneOptions options);
  ~NodeControlPlane();
  NodeControlPlane(const NodeControlPlane&) = delete;
  NodeControlPlane& operator=(const NodeControlPlane&) = delete;

  // Start connects to istiod (and the CA) and keeps the stream open.
  void Start();

  // Credentials returns the holder of `w`'s certificate (empty until the CA
  // answered), acquired for as long as the returned pointer (or a copy)
  // lives. Errors: those of Workload::Identity().
  absl::StatusOr<std::shared_ptr<identity::CredentialHolder>> Credentials(
      const runtime::Workload& w);
  // CredentialsFunction is Credentials as a NodeProxyOptions::credentials.
  std::function<
      absl::StatusOr<std::shared_ptr<identity::CredentialHolder>>(const runtime::Workload&)>
  CredentialsFunction();

  // MatchPod: see above. `service_account` empty matches any. Errors:
  // NotFound (no such workload on this node yet), FailedPrecondition (more
  // than one matches).
  absl::StatusOr<runtime::Workload> MatchPod(absl::string_view ns, absl::string_view name,
                                             absl::string_view service_account) const;

  bool ready() const;
  // TrustRootsPem: the distinct workload trust roots the CA's chains ended with.
  std::vector<std::string> TrustRootsPem() const;
  std::vector<CertStatus> CertificateStatus() const { return certs_->Status(); }
  const CertManagerStats& certificate_stats() const { return certs_->stats(); }
  AdsClient* ads() { return ads_.get(); }
  // prefetched: the identities held for this node's workloads (Prefetch above).
  size_t prefetched() const { return prefetched_.size(); }

 private:
  NodeControlPlane(runtime::EventLoop* loop, NodeControlPlaneOptions options);
  void OnAddressesApplied();  // prefetch: acquire/release this node's identities
  void UpdateBundles();       // the CA's roots into options_.bundles

  // Tap applies one type's resources with `inner`, then runs `after`
  // (the prefetch after Address pushes, on_policies_changed after
  // Authorization pushes).
  class Tap : public TypeHandler {
   public:
    Tap(TypeHandler* inner, std::function<void()> after)
        : inner_(inner), after_(std::move(after)) {}
    std::vector<Rejection> Apply(const std::vector<ResourceUpdate>& updates,
                                 const std::vector<std::string>& removed) override {
      std::vector<Rejection> rejected = inner_->Apply(updates, removed);
      if (after_) after_();
      return rejected;
    }

   private:
    TypeHandler* inner_;
    std::function<void()> after_;
  };

  runtime::EventLoop* loop_;
  NodeControlPlaneOptions options_;
  AddressHandler addresses_;
  Tap address_tap_{&addresses_, [this] { OnAddressesApplied(); }};
  Tap policy_tap_{&policies_, [this] {
                    if (options_.on_policies_changed) options_.on_policies_changed();
                  }};
  // Prefetch: one handle per identity of this node's workloads.
  std::map<identity::SpiffeId, std::shared_ptr<identity::CredentialHolder>> prefetched_;
  std::map<std::string, std::string> bundle_pem_;  // trust domain -> roots last put in bundles
  AuthorizationHandler policies_;
  std::unique_ptr<AdsClient> ads_;
  std::unique_ptr<CertificateClient> certs_;  // after ads_: it may borrow its connection
};

}  // namespace ambient::xds

#endif  // AMBIENT_XDS_NODE_CONTROL_PLANE_H_
