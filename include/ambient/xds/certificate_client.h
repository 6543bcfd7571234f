// ambient/xds/certificate_client.h: the Istio CA alone, on a
// runtime::EventLoop: certificates for the identities a host asks for,
// fetched and renewed without xDS (what a proxy that only wants workload
// certificates from istiod uses; NodeControlPlane does the same for a node
// proxy, over its xDS connection).
//
// Object model. A CertificateClient owns a ControlPlaneConnection to the CA
// (or borrows one: OnConnection, e.g. istiod's xDS connection when istiod is
// the CA, as NodeControlPlane does) and a CertificateManager (cert_manager.h: priorities, renewal
// at half the validity, per-identity retry backoff). A loop timer is armed at the manager's
// NextDeadline, so fetches, renewals and retries happen while the loop runs. Acquire returns the
// identity's CredentialHolder through a handle whose destruction releases exactly that one use
// (posted to the loop); the certificate of an identity is dropped with its last handle. Handles may
// outlive the client: their release then does nothing, and the holder keeps
// the last certificate it had.
//
// Threads: the loop's thread, except that handles may be destroyed on any
// thread while the loop lives.
#ifndef AMBIENT_XDS_CERTIFICATE_CLIENT_H_
#define AMBIENT_XDS_CERTIFICATE_CLIENT_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/spiffe_id.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/xds/cert_manager.h"
#include "ambient/xds/control_plane_connection.h"

namespace ambient::xds {

struct CertificateClientOptions {
  ConnectionOptions ca;  // the CA's address, TLS roots, token, cluster id
  CertManagerOptions certificates;
  // A CreateCertificate call not answered in this time fails (and is retried).
  absl::Duration ca_timeout = absl::Seconds(10);
  // Called on the loop after each answer of the CA was taken (e.g. to put
  // the trust roots the chains end with into a TrustBundleSource).
  std::function<void()> on_answer;
};

class CertificateClient {
 public:
  // New checks the options (those of ControlPlaneConnection::New; a
  // ca_timeout that is not positive is InvalidArgument) and starts
  // connecting to the CA. `loop` must outlive the client.
  static absl::StatusOr<std::unique_ptr<CertificateClient>> New(runtime::EventLoop* loop,
                                                                CertificateClientOptions options);
  // OnConnection makes a client whose calls go over `conn` (borrowed: it
  // must outlive the client and is started by its owner); options.ca is
  // not used. Errors: a ca_timeout that is not positive.
  static absl::StatusOr<std::unique_ptr<CertificateClient>> OnConnection(
      runtime::EventLoop* loop, ControlPlaneConnection* conn, CertificateClientOptions options);
  ~CertificateClient();
  CertificateClient(const CertificateClient&) = delete;
  CertificateClient& operator=(const CertificateClient&) = delete;

  // Acquire counts a user of `id` in (queued at `priority` when new) and
  // returns the handle described above: the holder, empty until the CA
  // answered.
  std::shared_ptr<identity::CredentialHolder> Acquire(
      const identity::SpiffeId& id, CertPriority priority = CertPriority::kWarmup);
  // StatusOf: the manager's status of `id` (nullopt when nobody holds it).
  std::optional<CertStatus> StatusOf(const identity::SpiffeId& id) const;
  std::vector<CertStatus> Status() const { return certs_.Status(); }
  const CertManagerStats& stats() const { return certs_.stats(); }
  // connection_error: why the last connection attempt to the CA failed (OK if none).
  absl::Status connection_error() const { return conn_->last_error(); }

 private:
  CertificateClient(runtime::EventLoop* loop, CertificateClientOptions options);
  void Pump();
  void Release(const identity::SpiffeId& id);

  runtime::EventLoop* loop_;
  CertificateClientOptions options_;
  std::unique_ptr<ControlPlaneConnection> owned_;  // null with OnConnection
  ControlPlaneConnection* conn_ = nullptr;
  CertificateManager certs_;
  runtime::Timer timer_;
  std::shared_ptr<std::atomic<CertificateClient*>> self_;
};

// CredentialsPem renders `creds` as PEM: the chain (leaf first) and the
// private key (PKCS#8). Errors: Internal when the TLS library fails.
struct PemPair {
  std::string chain;
  std::string key;
};
absl::StatusOr<PemPair> CredentialsPem(const identity::Credentials& creds);

}  // namespace ambient::xds

#endif  // AMBIENT_XDS_CERTIFICATE_CLIENT_H_
